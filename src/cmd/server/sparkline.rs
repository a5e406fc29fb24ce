//! Redis's ASCII sparklines (`sparkline.c`), as LATENCY GRAPH draws them: rows of `_o#`
//! (filled, `|` below the top of a column), then the samples' labels written downwards.

const CHARSET_FILL: &[u8] = b"_o#";
const LABEL_MARGIN_TOP: usize = 1;

/// Redis's `sparklineRender` with `SPARKLINE_FILL`: `samples` (value, label) in chunks of
/// `columns`, each `rows` high.
pub fn render(samples: &[(f64, String)], columns: usize, rows: usize) -> String {
    let mut out = String::new();
    let min = samples.iter().map(|s| s.0).fold(f64::INFINITY, f64::min);
    let max = samples.iter().map(|s| s.0).fold(f64::NEG_INFINITY, f64::max);
    for (i, chunk) in samples.chunks(columns).enumerate() {
        if i != 0 {
            out.push('\n');
        }
        render_range(&mut out, chunk, min, max, rows);
    }
    out
}

/// Redis's `sparklineRenderRange` (linear scale, filled).
fn render_range(out: &mut String, samples: &[(f64, String)], min: f64, max: f64, rows: usize) {
    let charset_len = CHARSET_FILL.len() as i64;
    let relmax = if max - min == 0.0 { 1.0 } else { max - min };
    let steps = charset_len * rows as i64;
    let has_labels = samples.iter().any(|s| !s.1.is_empty());
    let mut row = 0;
    loop {
        let mut printing = false;
        let mut chars = vec![b' '; samples.len()];
        for (j, (value, label)) in samples.iter().enumerate() {
            if row < rows {
                // As C: `(int)(relval*steps)/relmax`, then truncated again.
                let step = (((value - min) * steps as f64) as i64 as f64 / relmax) as i64;
                let step = step.clamp(0, steps - 1);
                let charidx = step - (rows - row - 1) as i64 * charset_len;
                printing = true;
                if (0..charset_len).contains(&charidx) {
                    chars[j] = CHARSET_FILL[charidx as usize];
                } else if charidx >= charset_len {
                    chars[j] = b'|';
                }
            } else {
                if has_labels && row - rows < LABEL_MARGIN_TOP {
                    printing = true;
                    break;
                }
                let label_char = row - rows - LABEL_MARGIN_TOP;
                if let Some(c) = label.as_bytes().get(label_char) {
                    printing = true;
                    chars[j] = *c;
                }
            }
        }
        if !printing {
            break;
        }
        row += 1;
        out.push_str(&String::from_utf8_lossy(&chars));
        out.push('\n');
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn draws_like_redis() {
        // Redis 7.0.15's LATENCY GRAPH body for samples 10, 20 and 40 ms taken 2 s, 1 s and
        // 0 s ago (the same function as sparklineRender(..., 80, 4, SPARKLINE_FILL)).
        let samples = [(10.0, "2s".to_string()), (20.0, "1s".into()), (40.0, "0s".into())];
        assert_eq!(render(&samples, 80, 4), "  #\n  |\n o|\n_||\n   \n210\nsss\n");
    }
}
