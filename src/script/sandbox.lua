-- raftis's Lua environment for scripts, Redis 7.0's as scripts see it. Runs once per
-- interpreter, as trusted code, before any script (an interpreter then serves many runs:
-- `reset` clears what one run leaves); `crate::script::env` passes in the Rust functions below. Every function defined here is skipped by the error handler, which reports
-- the script's own line (as Redis's does for its C functions).
local call_raw, pcall_raw, raw_lib, rand_raw, srand_raw, exhausted, version, version_num, gc_refused = ...
local G = _G
local dbg = debug
local type, error, tostring, select, setmetatable, getmetatable = type, error, tostring, select, setmetatable, getmetatable
local rawget, rawset, rawequal, pairs, unpack, floor = rawget, rawset, rawequal, pairs, unpack, math.floor
local pcall_orig, xpcall_orig, resume_orig = pcall, xpcall, coroutine.resume

-- Redis 7.0's __redis__err__handler: a non-table error becomes {err='ERR ' .. tostring(e)};
-- the position is that of the script code that raised it (C functions and this file skipped).
local function handler(err)
  local level = 2
  local i = dbg.getinfo(level, 'Sl')
  while i and (i.what == 'C' or i.source == '=raftis') do
    level = level + 1
    i = dbg.getinfo(level, 'Sl')
  end
  if type(err) ~= 'table' then
    err = {err = 'ERR ' .. tostring(err)}
  end
  if i then
    err['source'] = i.source
    err['line'] = i.currentline
  end
  return err
end

-- A step-budget abort must not be caught: anything that catches errors raises it again.
local function reraise_if_exhausted(ok, ...)
  if not ok and exhausted() then
    error((...), 0)
  end
  return ok, ...
end

-- Redis's pcall: an error table {err=...} is caught as its message.
local function pcall_result(ok, ...)
  if ok then
    return true, ...
  end
  if exhausted() then
    error((...), 0)
  end
  local e = ...
  if type(e) == 'table' then
    local m = e.err
    if type(m) == 'string' or type(m) == 'number' then
      return false, m
    end
  end
  return false, e
end

G.pcall = function(...) return pcall_result(pcall_orig(...)) end
G.xpcall = function(...) return reraise_if_exhausted(xpcall_orig(...)) end
coroutine.resume = function(...) return reraise_if_exhausted(resume_orig(...)) end

-- Addresses differ between replicas: tostring names tables, functions, threads and userdata
-- by the order they were first printed instead.
local names, named = {}, 0
local tostring_orig = tostring
G.tostring = function(...)
  local v = ...
  local t = type(v)
  if t == 'table' or t == 'function' or t == 'thread' or t == 'userdata' then
    local mt = getmetatable(v)
    if not (t == 'table' and type(mt) == 'table' and rawget(mt, '__tostring')) then
      if not names[v] then
        named = named + 1
        names[v] = named
      end
      return t .. ': 0x' .. string.format('%08x', names[v])
    end
  end
  return tostring_orig(...)
end

-- Redis's math.random and math.randomseed (Lua's, on redisLrand48).
local function checkint(n, v)
  if type(v) == 'string' then v = tonumber(v) end
  if type(v) ~= 'number' then
    error("bad argument #" .. n .. " to 'random' (number expected, got " .. type(v) .. ")", 0)
  end
  local i = v >= 0 and floor(v) or -floor(-v)
  return i
end
math.random = function(...)
  local r = (rand_raw() % 2147483647) / 2147483647
  local n = select('#', ...)
  if n == 0 then
    return r
  elseif n == 1 then
    local u = checkint(1, (...))
    if u < 1 then error("bad argument #1 to 'random' (interval is empty)", 0) end
    return floor(r * u) + 1
  elseif n == 2 then
    local l, u = ...
    l, u = checkint(1, l), checkint(2, u)
    if l > u then error("bad argument #2 to 'random' (interval is empty)", 0) end
    return floor(r * (u - l + 1)) + l
  end
  error('wrong number of arguments', 0)
end
math.randomseed = function(...)
  srand_raw(checkint(1, (...)))
end

-- The redis table. call_raw and the raw_lib functions that fail are C functions that raise
-- their error table (see `raising` in env.rs); pcall_raw returns (failed, value).
local redis = {}
redis.call = call_raw
redis.pcall = function(...)
  local _, r = pcall_raw(...)
  return r
end
for _, name in pairs({'sha1hex', 'log', 'setresp', 'set_repl', 'acl_check_cmd'}) do
  redis[name] = raw_lib[name]
end
redis.error_reply = raw_lib.error_reply
redis.status_reply = raw_lib.status_reply
redis.replicate_commands = function() return true end
redis.breakpoint = function() return false end
redis.debug = function() end
redis.REDIS_VERSION = version
redis.REDIS_VERSION_NUM = version_num
redis.LOG_DEBUG, redis.LOG_VERBOSE, redis.LOG_NOTICE, redis.LOG_WARNING = 0, 1, 2, 3
redis.REPL_NONE, redis.REPL_AOF, redis.REPL_SLAVE, redis.REPL_REPLICA, redis.REPL_ALL = 0, 1, 2, 2, 3

-- Functions: redis.register_function records a library's functions (FUNCTION LOAD, and FCALL,
-- which runs the library's code again to find its callbacks).
local registered = {}
local count = 0
-- True while a library's top level runs (FUNCTION LOAD, and FCALL finding its callbacks): set
-- by `reset` for each run's mode.
local loading = false
local FLAGS = {['no-writes'] = true, ['allow-oom'] = true, ['allow-stale'] = true,
               ['no-cluster'] = true, ['allow-cross-slot-keys'] = true}
local function fail(msg) error({err = 'ERR ' .. msg}) end
local function valid_name(n)
  return type(n) == 'string' and #n > 0 and not n:find('[^%w_]')
end
local function register(...)
  local n = select('#', ...)
  local name, callback, flags, description
  if n == 1 then
    local t = ...
    if type(t) ~= 'table' then
      fail('calling redis.register_function with a single argument is only applicable to Lua table (representing named arguments).')
    end
    for k, v in pairs(t) do
      if k == 'function_name' then
        if type(v) ~= 'string' then fail('function_name argument given to redis.register_function must be a string') end
        name = v
      elseif k == 'callback' then
        if type(v) ~= 'function' then fail('callback argument given to redis.register_function must be a function') end
        callback = v
      elseif k == 'flags' then
        if type(v) ~= 'table' then fail('flags argument to redis.register_function must be a table representing function flags') end
        flags = v
      elseif k == 'description' then
        if type(v) ~= 'string' then fail('description argument given to redis.register_function must be a string') end
        description = v
      else
        fail('unknown argument given to redis.register_function')
      end
    end
    if not name then fail('redis.register_function must get a function name argument') end
    if not callback then fail('redis.register_function must get a callback argument') end
  elseif n == 2 then
    name, callback = ...
    if type(name) ~= 'string' then fail('first argument to redis.register_function must be a string') end
    if type(callback) ~= 'function' then fail('second argument to redis.register_function must be a function') end
  else
    fail('wrong number of arguments to redis.register_function')
  end
  local flag_list = {}
  for _, f in pairs(flags or {}) do
    if type(f) ~= 'string' or not FLAGS[f] then fail('unknown flag given') end
    flag_list[#flag_list + 1] = f
  end
  -- Redis 7.0 names the library in this message, whatever was wrong.
  if not valid_name(name) then
    fail('Library names can only contain letters, numbers, or underscores(_) and must be at least one character long')
  end
  if not loading then fail('redis.register_function can only be called on FUNCTION LOAD command') end
  if registered[name] then fail('Function already exists in the library') end
  registered[name] = {callback = callback, flags = flag_list, description = description}
  count = count + 1
end

-- What a library's top level sees as its globals (Redis 7.0's library API): `redis` with only
-- these fields, nothing else. Its functions, once called, see the whole environment.
local load_redis = {register_function = register, log = redis.log, REDIS_VERSION = version,
                    REDIS_VERSION_NUM = version_num, LOG_DEBUG = 0, LOG_VERBOSE = 1,
                    LOG_NOTICE = 2, LOG_WARNING = 3}
G.redis = redis

-- In an interpreter kept between runs, the collector's state depends on the runs before: a
-- script that asks about it (or changes it) stops, and runs again in a fresh interpreter.
if gc_refused then
  G.collectgarbage = gc_refused
  G.gcinfo = gc_refused
end

-- What Redis 7.0 does not offer, or raftis leaves out (loadstring and load: no code built at
-- run time, so no bytecode either).
for _, name in pairs({'dofile', 'loadfile', 'print', 'require', 'module', 'setfenv', 'getfenv',
                      'newproxy', 'loadstring', 'load', 'debug', 'package', 'os', 'io'}) do
  G[name] = nil
end

-- Read-only tables: writes fail with Redis's message; reading a missing global fails too.
local protected = setmetatable({}, {__mode = 'k'})
local function readonly_error()
  error('Attempt to modify a readonly table', 2)
end
local function readonly(t, strict)
  local proxy = {}
  local index = t
  if strict then
    index = function(_, k)
      local v = t[k]
      if v == nil then
        error("Script attempted to access nonexistent global variable '" .. tostring_orig(k) .. "'", 2)
      end
      return v
    end
  end
  setmetatable(proxy, {__index = index, __newindex = readonly_error, __metatable = false})
  protected[proxy] = true
  return proxy
end
local rawset_orig = rawset
G.rawset = function(t, k, v)
  if protected[t] then
    -- Redis's rawset raises this from C: no position in the message.
    error('Attempt to modify a readonly table', 0)
  end
  return rawset_orig(t, k, v)
end
for _, name in pairs({'string', 'math', 'table', 'coroutine', 'redis', 'cjson', 'bit', 'struct', 'cmsgpack'}) do
  if rawget(G, name) then
    rawset_orig(G, name, readonly(rawget(G, name)))
  end
end
-- Strings share one metatable: `("x"):upper()` finds the read-only string table through it,
-- and a script sees (getmetatable('')) only a read-only view of it.
local string_mt = getmetatable('')
string_mt.__index = rawget(G, 'string')
string_mt.__metatable = readonly(string_mt)
local load_globals = {redis = readonly(load_redis, true)}
-- The script's globals: read-only, a missing name is an error; a library's top level sees the
-- library API until `seal`.
local env = setmetatable({}, {
  __index = function(_, k)
    local v = (loading and load_globals or G)[k]
    if v == nil then
      error("Script attempted to access nonexistent global variable '" .. tostring_orig(k) .. "'", 2)
    end
    return v
  end,
  __newindex = readonly_error,
  __metatable = false,
})
protected[env] = true
G._G = env
-- Ends a library's load phase: from now on its functions run with the whole environment.
local function seal()
  loading = false
end

-- Runs the script function (EVAL) or a library function with its arguments (FCALL) under the
-- error handler; returns ok and the first result or the error table.
local function run(f, ...)
  local n = select('#', ...)
  if n == 0 then
    return xpcall_orig(f, handler)
  end
  local args = {...}
  return xpcall_orig(function() return f(unpack(args, 1, n)) end, handler)
end

-- Clears what a run leaves in this file's state (KEYS and ARGV are replaced by the next EVAL)
-- and says whether the next run starts by loading a library (FUNCTION LOAD, FCALL).
-- Both tables are left as they are when empty (`named` and `count` count their entries): a
-- new table per run was most of this function's cost.
local function reset(load)
  if named > 0 then
    names, named = setmetatable({}, {__mode = 'k'}), 0
  end
  if count > 0 then
    for k in pairs(registered) do registered[k] = nil end
    count = 0
  end
  loading = load
end

return env, G, run, registered, seal, reset
