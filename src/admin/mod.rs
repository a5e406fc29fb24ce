//! The HTTP admin API of seed 003, served on the node's Raft address (the RPC server tells an
//! HTTP request from an RPC frame by its first byte, see `raft::rpc::server`):
//!
//! - `GET /raft/leader`: who leads, as this node sees it;
//! - `GET /raft/metrics`: this node's Raft figures ([`RaftStatus`]) as JSON;
//!   both take `?group=N` on a multi-raft node (group 0, MetaRaft, by default);
//! - `GET /cluster/groups`, `GET /cluster/slots`: the data groups and the slot table of a
//!   multi-raft cluster as this node sees them (404 on a node without data groups);
//! - `POST /raft/init`: forms a cluster of the listed nodes (once);
//! - `POST /raft/add_learner`, `POST /raft/change_membership`, `POST /raft/remove_node`;
//! - `GET /metrics`: Raft and server figures in Prometheus's text format ([`prometheus`]);
//! - `GET /health`: 200 while Raft runs, 503 once it has stopped.
//!
//! Every error is a JSON object `{"error": "..."}` with a fitting status code; a malformed
//! body is a 400 and never reaches Raft (the [`Valid`] extractor refuses it before the handler
//! runs). The bodies and their checks are in [`body`].

mod body;

/// The admin API's body checks for the fuzz targets, without making them public.
#[cfg(feature = "fuzzing")]
pub mod fuzzing {
    use super::body::{AddLearnerBody, ChangeMembershipBody, InitBody, RemoveNodeBody};
    use crate::raft::NodeInfo;

    /// Parses `data` as each POST endpoint's JSON body and runs its checks, as the endpoints
    /// do: never a panic, whatever the bytes. Returns how many bodies were accepted.
    pub fn bodies(data: &[u8]) -> usize {
        let me = NodeInfo { raft_addr: "127.0.0.1:8001".into(), client_addr: "127.0.0.1:7379".into() };
        let init = serde_json::from_slice::<InitBody>(data).ok().map(|b| b.members(1, &me).is_ok());
        let learner = serde_json::from_slice::<AddLearnerBody>(data).ok().map(|b| b.validated().is_ok());
        let change = serde_json::from_slice::<ChangeMembershipBody>(data).ok().map(|b| b.validated().is_ok());
        let remove = serde_json::from_slice::<RemoveNodeBody>(data).ok().map(|_| true);
        [init, learner, change, remove].into_iter().filter(|ok| *ok == Some(true)).count()
    }
}
mod prometheus;

use crate::raft::membership::{MembershipError, RaftStatus};
use crate::raft::node::{HttpService, Replica};
use crate::raft::rpc::server::SniffedStream;
use crate::raft::{NodeId, NodeInfo};
use crate::server::Shared;
use axum::extract::{FromRequest, Request, State};
use axum::http::{header, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use body::{AddLearnerBody, ChangeMembershipBody, InitBody, RemoveNodeBody};
use serde::de::DeserializeOwned;
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Weak};
use tokio::net::TcpListener;

/// The admin API of one node. Holds weak references: the node owns the service, not the
/// other way round.
pub struct Admin {
    replica: Weak<Replica>,
    shared: Weak<Shared>,
}

impl Admin {
    /// The admin API over `replica` (Raft) and `shared` (server figures for `/metrics`).
    pub fn new(replica: &Arc<Replica>, shared: &Arc<Shared>) -> Arc<Admin> {
        Arc::new(Admin { replica: Arc::downgrade(replica), shared: Arc::downgrade(shared) })
    }
}

impl HttpService for Admin {
    fn serve(&self, stream: SniffedStream) -> Pin<Box<dyn Future<Output = ()> + Send>> {
        let state = match (self.replica.upgrade(), self.shared.upgrade()) {
            (Some(replica), Some(shared)) => AdminState { replica, shared },
            _ => return Box::pin(async {}),
        };
        Box::pin(async move {
            let service = hyper_util::service::TowerToHyperService::new(router(state));
            let io = hyper_util::rt::TokioIo::new(stream);
            if let Err(e) = hyper::server::conn::http1::Builder::new().serve_connection(io, service).await {
                tracing::debug!("admin http connection: {e}");
            }
        })
    }
}

/// Serves `admin` on a listener of its own (`admin-addr`) until `shutdown` turns true;
/// returns the address it listens on.
pub fn serve_extra(
    listener: TcpListener,
    admin: Arc<Admin>,
    mut shutdown: crate::rt::ShutdownSignal,
) -> Option<SocketAddr> {
    let addr = listener.local_addr().ok();
    tokio::spawn(async move {
        loop {
            // Biased: the outcome must not depend on a random pick between ready branches.
            let accepted = tokio::select! {
                biased;
                _ = shutdown.wait() => break,
                accepted = listener.accept() => accepted,
            };
            match accepted {
                Ok((stream, _)) => {
                    tokio::spawn(admin.serve(tokio::io::BufReader::new(stream)));
                }
                Err(e) => {
                    tracing::warn!("admin accept failed: {e}");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                }
            }
        }
    });
    addr
}

/// What every handler can reach.
#[derive(Clone)]
struct AdminState {
    replica: Arc<Replica>,
    shared: Arc<Shared>,
}

/// The routes of the admin API.
fn router(state: AdminState) -> Router {
    Router::new()
        .route("/raft/leader", get(leader))
        .route("/raft/metrics", get(raft_metrics))
        .route("/cluster/groups", get(cluster_groups))
        .route("/cluster/slots", get(cluster_slots))
        .route("/raft/init", post(init))
        .route("/raft/add_learner", post(add_learner))
        .route("/raft/change_membership", post(change_membership))
        .route("/raft/remove_node", post(remove_node))
        .route("/metrics", get(metrics))
        .route("/health", get(health))
        .fallback(|| async { error(StatusCode::NOT_FOUND, "no such endpoint") })
        .method_not_allowed_fallback(|| async { error(StatusCode::METHOD_NOT_ALLOWED, "method not allowed here") })
        .with_state(state)
}

type Reply = (StatusCode, Json<Value>);

fn error(status: StatusCode, msg: impl std::fmt::Display) -> Reply {
    (status, Json(json!({ "error": msg.to_string() })))
}

fn ok(value: Value) -> Reply {
    (StatusCode::OK, Json(value))
}

/// The status code and body of a membership operation's outcome.
fn membership_reply(result: Result<(), MembershipError>, status: &RaftStatus) -> Reply {
    match result {
        Ok(()) => ok(json!({ "ok": true, "members": status.members })),
        Err(e @ MembershipError::AlreadyInitialized) => error(StatusCode::CONFLICT, e),
        Err(e @ MembershipError::Invalid(_)) => error(StatusCode::BAD_REQUEST, e),
        Err(MembershipError::NotLeader(leader)) => (
            StatusCode::MISDIRECTED_REQUEST,
            Json(json!({ "error": MembershipError::NotLeader(leader).to_string(), "leader_id": leader })),
        ),
        Err(e @ (MembershipError::Raft(_) | MembershipError::NotCaughtUp(_))) => {
            error(StatusCode::SERVICE_UNAVAILABLE, e)
        }
        Err(e @ MembershipError::Forward(_)) => error(StatusCode::BAD_GATEWAY, e),
        Err(e @ MembershipError::Timeout(_)) => error(StatusCode::GATEWAY_TIMEOUT, e),
    }
}

/// A POST body the admin API accepts: parsed as JSON, then checked (against this node where
/// needed) into what the handler acts on.
trait Checked: DeserializeOwned {
    type Output;
    /// What the handler acts on, or the operator's message for a body that parses but makes
    /// no sense.
    fn check(self, s: &AdminState) -> Result<Self::Output, String>;
}

impl Checked for InitBody {
    type Output = BTreeMap<NodeId, NodeInfo>;
    fn check(self, s: &AdminState) -> Result<Self::Output, String> {
        self.members(s.replica.id(), s.replica.info())
    }
}

impl Checked for AddLearnerBody {
    type Output = (NodeId, NodeInfo);
    fn check(self, _: &AdminState) -> Result<Self::Output, String> {
        self.validated()
    }
}

impl Checked for ChangeMembershipBody {
    type Output = (BTreeSet<NodeId>, bool);
    fn check(self, _: &AdminState) -> Result<Self::Output, String> {
        self.validated()
    }
}

impl Checked for RemoveNodeBody {
    type Output = NodeId;
    fn check(self, _: &AdminState) -> Result<NodeId, String> {
        Ok(self.node_id)
    }
}

/// The checked body of a POST endpoint. Extracting it is where every endpoint refuses a bad
/// body, so none can forget to, and all refuse alike: a 400 with axum's explanation when the
/// body is not the expected JSON, a 400 with the check's message when it makes no sense.
struct Valid<T: Checked>(T::Output);

impl<T: Checked> FromRequest<AdminState> for Valid<T> {
    type Rejection = Reply;

    async fn from_request(req: Request, s: &AdminState) -> Result<Self, Reply> {
        let Json(body) = Json::<T>::from_request(req, s)
            .await
            .map_err(|e| error(StatusCode::BAD_REQUEST, format!("bad request body: {}", e.body_text())))?;
        body.check(s).map(Valid).map_err(|msg| error(StatusCode::BAD_REQUEST, msg))
    }
}

/// `?group=N`: which Raft group of the node a request is about (group 0 by default); a value
/// that is not a group number is a 400.
fn group_query(uri: &Uri) -> Result<Option<u64>, Reply> {
    let Some(query) = uri.query() else { return Ok(None) };
    let mut group = None;
    for pair in query.split('&') {
        if let Some(v) = pair.strip_prefix("group=") {
            let n = v.parse::<u64>().map_err(|_| {
                let shown: String = v.chars().take(32).collect();
                error(StatusCode::BAD_REQUEST, format!("bad query: group must be a group number, got {shown:?}"))
            })?;
            group = Some(n);
        }
    }
    Ok(group)
}

/// The replica of the group `?group=N` names, or the 404 for a group this node does not run.
fn group_param(s: &AdminState, uri: &Uri) -> Result<Arc<Replica>, Reply> {
    match group_query(uri)? {
        None | Some(0) => Ok(s.replica.clone()),
        Some(g) => s.shared.engine.groups().get(&g).cloned().ok_or_else(|| {
            let groups: Vec<&u64> = s.shared.engine.groups().keys().collect();
            error(StatusCode::NOT_FOUND, format!("unknown raft group {g}: this node runs groups {groups:?}"))
        }),
    }
}

async fn leader(State(s): State<AdminState>, uri: Uri) -> Reply {
    let replica = match group_param(&s, &uri) {
        Ok(r) => r,
        Err(e) => return e,
    };
    let st = replica.status();
    let leader = st.current_leader.and_then(|id| st.members.iter().find(|m| m.id == id));
    ok(json!({
        "leader_id": st.current_leader,
        "node_id": st.id,
        "term": st.current_term,
        "state": st.state,
        "leader": leader.map(|m| json!({ "raft_addr": m.raft_addr, "resp_addr": m.client_addr })),
    }))
}

/// The fields in [`RaftStatus`]'s order (the node's own `id` first, `members` after the
/// figures), which flat readers such as the cluster scripts rely on.
async fn raft_metrics(State(s): State<AdminState>, uri: Uri) -> Response {
    match group_param(&s, &uri) {
        Ok(replica) => Json(replica.status()).into_response(),
        Err(e) => e.into_response(),
    }
}

/// The multi-raft groups of this node, or the 404 of a node without data groups.
fn multi_raft(s: &AdminState) -> Result<(Arc<crate::cluster::Groups>, Arc<crate::cluster::ClusterMap>), Reply> {
    let Some(groups) = s.shared.cluster.clone() else {
        return Err(error(
            StatusCode::NOT_FOUND,
            "this node runs no data groups (cluster-enabled no, or num-groups 0)",
        ));
    };
    let Some(map) = groups.map() else {
        return Err(error(StatusCode::SERVICE_UNAVAILABLE, "the cluster is not formed yet: no cluster map"));
    };
    Ok((groups, map))
}

/// `GET /cluster/groups`: every data group: its slots, the voters the map gives it, its leader
/// and Raft figures as this node sees them.
async fn cluster_groups(State(s): State<AdminState>) -> Reply {
    let (groups, map) = match multi_raft(&s) {
        Ok(x) => x,
        Err(e) => return e,
    };
    let preferred = map.preferred_leaders();
    let list: Vec<Value> = map
        .groups
        .iter()
        .map(|(g, placement)| {
            let st = groups.group(*g).map(|r| r.status());
            let owned = groups.group(*g).and_then(|r| r.control().owned);
            json!({
                "group": g,
                "slots": map.ranges_of(*g),
                "voters": placement.voters,
                "preferred_leader": preferred.get(g),
                "leader_id": st.as_ref().and_then(|st| st.current_leader),
                "term": st.as_ref().map(|st| st.current_term),
                "last_applied_index": st.as_ref().and_then(|st| st.last_applied_index),
                "owned_epoch": owned.map(|o| o.epoch),
                "quiet": groups.group(*g).is_some_and(|r| r.is_quiet()),
            })
        })
        .collect();
    ok(json!({ "epoch": map.epoch, "node_id": groups.id, "groups": list }))
}

/// `GET /cluster/slots`: the slot table: each range, its group and the group's leader.
async fn cluster_slots(State(s): State<AdminState>) -> Reply {
    let (groups, map) = match multi_raft(&s) {
        Ok(x) => x,
        Err(e) => return e,
    };
    let list: Vec<Value> = map
        .slots
        .iter()
        .map(|r| {
            let leader = groups.leader_of(r.group);
            json!({
                "start": r.start,
                "end": r.end,
                "group": r.group,
                "leader_id": leader.as_ref().map(|(id, _)| id),
                "leader": leader.map(|(_, n)| n.client_addr),
            })
        })
        .collect();
    ok(json!({ "epoch": map.epoch, "slots": list }))
}

async fn init(State(s): State<AdminState>, Valid(members): Valid<InitBody>) -> Reply {
    let result = s.replica.initialize(members).await;
    membership_reply(result, &s.replica.status())
}

async fn add_learner(State(s): State<AdminState>, Valid((id, node)): Valid<AddLearnerBody>) -> Reply {
    // Without a client address, ask the new node for it (as CLUSTER METARAFT ADDLEARNER does).
    let result = if node.client_addr.is_empty() {
        s.replica.add_learner_at(id, &node.raft_addr).await.map(|_| ())
    } else {
        s.replica.add_learner(id, node).await
    };
    membership_reply(result, &s.replica.status())
}

async fn change_membership(State(s): State<AdminState>, Valid((voters, retain)): Valid<ChangeMembershipBody>) -> Reply {
    let result = s.replica.change_membership(voters, retain).await;
    membership_reply(result, &s.replica.status())
}

async fn remove_node(State(s): State<AdminState>, Valid(id): Valid<RemoveNodeBody>) -> Reply {
    let result = s.replica.remove_node(id).await;
    membership_reply(result, &s.replica.status())
}

async fn metrics(State(s): State<AdminState>) -> Response {
    match prometheus::render(&s.replica.status(), &s.shared) {
        Ok(text) => ([(header::CONTENT_TYPE, "application/openmetrics-text; version=1.0.0; charset=utf-8")], text)
            .into_response(),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, e).into_response(),
    }
}

async fn health(State(s): State<AdminState>) -> Reply {
    let st = s.replica.status();
    if st.failed || s.shared.is_shutting_down() {
        let why = if st.failed { "raft has stopped on a fatal error" } else { "shutting down" };
        return error(StatusCode::SERVICE_UNAVAILABLE, why);
    }
    ok(json!({ "status": "ok", "node_id": st.id, "leader_id": st.current_leader }))
}
