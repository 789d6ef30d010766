//! The HTML rendering of a [`Datasheet`]: one self-contained page (inline
//! CSS, inline SVG charts drawn here, a few lines of inline script) that
//! loads nothing from anywhere — a Content-Security-Policy in the page
//! forbids it — and prints well.
//!
//! Every string from the data is HTML-escaped. Chart elements carry `data-`
//! attributes with the numbers they draw, and each section has an `id`
//! (`totals`, `policy`, `withdrawal`, `signals`, one per breakdown facet such
//! as `license_id`, `attributions`, `ingest-log`), so tests and scripts can
//! check the page. The closing script measures the rendered charts and
//! records the results on `<body>` (`data-rendered`, `data-svg-count`,
//! `data-svg-min-bbox`, `data-clipped`, `data-overflow`, `data-page-overflow`).

use std::borrow::Cow;
use std::fmt::Write;

use super::markdown::{diff_order, pct_change, plural_facet};
use super::*;

/// Bars drawn per breakdown chart; the rest are merged into "other".
const TOP_N: usize = 12;
/// Table rows per table; the JSON report has the rest.
const MAX_TABLE_ROWS: usize = 500;
/// Width of every full-width chart, in SVG user units (about pixels).
const W: f64 = 960.0;
/// Bar colour for facets without classes, documents and the other measure.
const BLUE: &str = "#2563eb";
const TEAL: &str = "#0d9488";
const GREY: &str = "#cbd5e1";

const STYLE: &str = r#"
:root{--ink:#1e293b;--muted:#64748b;--line:#e2e8f0;--bg:#f5f7fa;--card:#fff;--accent:#2563eb}
*{box-sizing:border-box}
html{-webkit-print-color-adjust:exact;print-color-adjust:exact}
body{margin:0;background:var(--bg);color:var(--ink);font:14px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,sans-serif}
header,main,footer{max-width:1040px;margin:0 auto;padding:0 24px}
header{padding-top:28px}
h1{font-size:26px;line-height:1.25;margin:0 0 6px;overflow-wrap:anywhere}
h2{font-size:18px;margin:0 0 4px}
h2 small{font-weight:400;color:var(--muted);font-size:13px;margin-left:8px}
h3{font-size:15px;margin:20px 0 6px}
p{margin:6px 0}
.lead{color:var(--muted);margin:0 0 12px}
.meta{color:var(--muted);margin:0;overflow-wrap:anywhere}
code,.mono{font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,"Liberation Mono",monospace;font-size:12px}
code{background:#eef2f7;border-radius:4px;padding:1px 5px;overflow-wrap:anywhere}
.mono{word-break:break-all}
.path{font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,"Liberation Mono",monospace;font-size:12px;overflow-wrap:anywhere}
nav{display:flex;flex-wrap:wrap;gap:4px 16px;margin:14px 0 0;font-size:13px}
nav a{color:var(--accent);text-decoration:none}
nav a:hover{text-decoration:underline}
section{background:var(--card);border:1px solid var(--line);border-radius:10px;padding:18px 22px;margin:16px 0}
.cards{display:grid;grid-template-columns:repeat(3,1fr);gap:12px;margin-top:10px}
.cards.small{grid-template-columns:repeat(auto-fit,minmax(140px,1fr))}
.card{border:1px solid var(--line);border-radius:8px;padding:10px 14px;min-width:0}
.card .lbl{color:var(--muted);font-size:11px;text-transform:uppercase;letter-spacing:.05em}
.card .num{font-size:26px;font-weight:650;line-height:1.2;font-variant-numeric:tabular-nums}
.card .sub{color:var(--muted);font-size:12px;overflow-wrap:anywhere}
.cards.small .num{font-size:20px}
.wrap{overflow-x:auto;margin-top:12px}
table{border-collapse:collapse;width:100%;font-size:13px;font-variant-numeric:tabular-nums}
th,td{padding:4px 8px;border-bottom:1px solid var(--line);text-align:left;vertical-align:top;overflow-wrap:anywhere}
th{font-weight:600;color:var(--muted);font-size:12px;border-bottom:2px solid var(--line)}
td.n,th.n{text-align:right;white-space:nowrap}
tr.other td{color:var(--muted);font-style:italic}
td.neg{color:#b91c1c}
td.pos{color:#15803d}
ul.plain{margin:0;padding-left:16px}
.callout{border-left:5px solid #f59e0b;background:#fffbeb}
.callout.info{border-left-color:#94a3b8;background:#f8fafc}
.callout.ok{border-left-color:#16a34a;background:#f0fdf4}
.big{font-size:20px;font-weight:650}
.badge{display:inline-block;border-radius:10px;padding:0 8px;font-size:12px;background:#fee2e2;color:#991b1b;font-weight:600}
.badge.ok{background:#dcfce7;color:#166534}
svg{display:block;width:100%;height:auto;margin-top:8px}
svg text{font-size:12px;fill:#334155}
svg text.head{font-weight:600;fill:#64748b;font-size:11px;letter-spacing:.04em}
svg text.in{fill:#fff;font-weight:600}
svg text.cut{fill:#b91c1c;font-size:11px}
.legend{display:flex;flex-wrap:wrap;gap:4px 18px;font-size:12px;margin:8px 0 0;color:#334155}
.sw{display:inline-block;width:11px;height:11px;border-radius:2px;margin-right:6px;vertical-align:-1px}
.grid2{display:grid;grid-template-columns:1fr 1fr;gap:14px;margin-top:12px}
.sig{border:1px solid var(--line);border-radius:8px;padding:12px 14px;min-width:0}
.sig.wide{grid-column:1/-1}
.sig h3{margin:0 0 2px}
.sig .lead{font-size:12px;margin:0}
.sig table{font-size:12px}
.q th,.q td{text-align:right;padding:2px 5px}
footer{color:var(--muted);font-size:12px;padding-bottom:28px}
td.hash{white-space:nowrap;word-break:normal}
@media (max-width:1000px){td.hash{white-space:normal;word-break:break-all}}
@media (max-width:760px){.grid2,.cards{grid-template-columns:1fr} th,td{padding:3px 4px}}
@media print{
 body{background:#fff;font-size:11px}
 header,main,footer{max-width:none;padding:0}
 nav{display:none}
 section{border:none;border-radius:0;padding:0;margin:18px 0}
 section.callout{padding:8px 12px}
 svg,.sig,.cards,tr{break-inside:avoid}
 .wrap{overflow:visible}
 table{font-size:10px}
 th,td{padding:2px 4px}
 td.n,td.hash{white-space:normal;word-break:break-all}
 h2,h3{break-after:avoid}
}
"#;

/// Runs once the page is laid out: measures every chart and records the
/// results on `<body>` so a headless browser's DOM dump shows them.
const CHECK_SCRIPT: &str = r#"(function(){
var b=document.body,svgs=document.querySelectorAll('svg'),min=Infinity,clip=[],over=[];
svgs.forEach(function(s,i){var bb=s.getBBox(),vb=s.viewBox.baseVal;
s.setAttribute('data-bbox-width',bb.width.toFixed(1));min=Math.min(min,bb.width);
if(vb&&vb.width&&(bb.x<vb.x-0.5||bb.x+bb.width>vb.x+vb.width+0.5||bb.y+bb.height>vb.y+vb.height+0.5))clip.push(s.getAttribute('data-chart')+'#'+i);});
document.querySelectorAll('section,.wrap,.sig,.card').forEach(function(e){if(e.scrollWidth>e.clientWidth+1)over.push(e.id||e.className);});
var d=document.documentElement;
b.setAttribute('data-svg-count',svgs.length);
b.setAttribute('data-svg-min-bbox',svgs.length?min.toFixed(1):'0');
b.setAttribute('data-clipped',clip.join(' '));
b.setAttribute('data-overflow',over.join(' '));
b.setAttribute('data-page-overflow',d.scrollWidth>d.clientWidth+1?'1':'0');
b.setAttribute('data-csp-violations',d.getAttribute('data-csp-violations')||'0');
b.setAttribute('data-rendered','1');})();"#;

/// The datasheet as one self-contained HTML page with charts.
pub fn to_html(d: &Datasheet) -> String {
    let mut out = String::with_capacity(64 * 1024);
    let o = &mut out;
    let m = Measure::of(d);
    let _ = write!(
        o,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; img-src data:\">\n\
         <meta name=\"generator\" content=\"corpusql\">\n<title>{}</title>\n\
         <script>document.addEventListener('securitypolicyviolation',function(){{var d=document.documentElement;d.setAttribute('data-csp-violations',(+d.getAttribute('data-csp-violations')||0)+1)}});</script>\n\
         <style>{STYLE}</style></head>\n<body>\n",
        esc(&d.title)
    );
    header(o, d);
    o.push_str("<main>\n");
    if !d.notes.is_empty() {
        o.push_str("<section id=\"notes\" class=\"callout\"><h2>Notes</h2><ul class=\"plain\">");
        for n in &d.notes {
            let _ = write!(o, "<li>{}</li>", esc(n));
        }
        o.push_str("</ul></section>\n");
    }
    totals(o, d);
    if let Some(t) = &d.training {
        training(o, t);
    }
    if let Some(p) = &d.policy {
        policy(o, d, p);
    }
    if let Some(w) = &d.withdrawal {
        withdrawal(o, d, w);
    }
    if !d.withdrawal_log.is_empty() {
        withdrawal_log(o, &d.withdrawal_log);
    }
    if !d.signals.is_empty() {
        signals(o, &d.signals);
    }
    for b in &d.breakdowns {
        breakdown(o, d, b, m);
    }
    attributions(o, &d.attributions);
    ingest_log(o, &d.ingest_log);
    let _ = write!(
        o,
        "</main>\n<footer>Datasheet made by corpusql on {}. The JSON report holds every number on this page.</footer>\n<script>{CHECK_SCRIPT}</script>\n</body></html>\n",
        esc(&fmt_time(d.generated_unix))
    );
    out
}

fn header(o: &mut String, d: &Datasheet) {
    let _ = write!(
        o,
        "<header><h1>{}</h1><p class=\"meta\">Corpus <code>{}</code> · generation {} · selection <code>{}</code> · tokens counted with <code>{}</code> · generated {}</p>\n<nav>",
        esc(&d.title),
        esc(&d.corpus),
        d.generation,
        esc(&d.selection),
        esc(&d.tokenizer),
        esc(&fmt_time(d.generated_unix))
    );
    let mut links: Vec<(String, String)> = vec![("totals".into(), "Totals".into())];
    if d.policy.is_some() {
        links.push(("policy".into(), "Policy".into()));
    }
    if d.withdrawal.is_some() {
        links.push(("withdrawal".into(), "Withdrawal".into()));
    }
    if !d.withdrawal_log.is_empty() {
        links.push(("withdrawal-log".into(), "Withdrawal log".into()));
    }
    if !d.signals.is_empty() {
        links.push(("signals".into(), "Signals".into()));
    }
    for b in &d.breakdowns {
        links.push((section_id(&b.facet), facet_title(&b.facet)));
    }
    links.push(("attributions".into(), "Attributions".into()));
    links.push(("ingest-log".into(), "Ingest log".into()));
    for (id, label) in links {
        let _ = write!(o, "<a href=\"#{}\">{}</a>", esc(&id), esc(&label));
    }
    o.push_str("</nav></header>\n");
}

/// A mixture's training set: per component its tokens, share, documents
/// and epochs; per phase the tokens of each component.
fn training(o: &mut String, t: &crate::train::training::TrainingSummary) {
    let _ = write!(
        o,
        "<section id=\"training\"><h2>Training set</h2><p class=\"lead\">The stream emits {} sequences of {} tokens ({} tokens); the totals and breakdowns count exactly its documents and the tokens it takes from them, repeats included.</p>\
         <div class=\"wrap\"><table><thead><tr><th>Component</th><th class=\"n\">Tokens</th><th class=\"n\">Share</th><th class=\"n\">Documents</th><th class=\"n\">Epochs</th><th>Query</th></tr></thead><tbody>",
        esc(&fmt_int(t.sequences)),
        t.seq_len,
        esc(&fmt_int(t.tokens))
    );
    for c in &t.components {
        let _ = write!(
            o,
            "<tr data-component=\"{}\" data-tokens=\"{}\"><td>{}</td><td class=\"n\">{}</td><td class=\"n\">{:.2}%</td><td class=\"n\">{}</td><td class=\"n\">{:.2}</td><td><code>{}</code></td></tr>",
            esc(&c.name),
            c.tokens,
            esc(&c.name),
            esc(&fmt_int(c.tokens)),
            100.0 * c.share,
            esc(&fmt_int(c.docs)),
            c.epochs,
            esc(&c.query)
        );
    }
    o.push_str("</tbody></table></div>");
    if t.phases.len() > 1 || !t.weight_changes.is_empty() {
        o.push_str("<div class=\"wrap\"><table><thead><tr><th>Phase</th><th class=\"n\">First sequence</th><th class=\"n\">Sequences</th>");
        for c in &t.components {
            let _ = write!(o, "<th class=\"n\">{}</th>", esc(&c.name));
        }
        o.push_str("</tr></thead><tbody>");
        for p in &t.phases {
            let _ = write!(
                o,
                "<tr><td>{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td>",
                esc(&p.name),
                esc(&fmt_int(p.first_sequence)),
                esc(&fmt_int(p.sequences))
            );
            for c in &t.components {
                let n = p.tokens_by_component.get(&c.name).copied().unwrap_or(0);
                let _ = write!(o, "<td class=\"n\">{}</td>", esc(&fmt_int(n)));
            }
            o.push_str("</tr>");
        }
        o.push_str("</tbody></table></div>");
    }
    o.push_str("</section>\n");
}

fn totals(o: &mut String, d: &Datasheet) {
    let t = &d.totals;
    let _ = write!(
        o,
        "<section id=\"totals\"><h2>Totals</h2><div class=\"cards\">\
         <div class=\"card\" data-docs=\"{}\"><div class=\"lbl\">Documents</div><div class=\"num\">{}</div><div class=\"sub\">{} per document on average</div></div>\
         <div class=\"card\" data-bytes=\"{}\"><div class=\"lbl\">Text</div><div class=\"num\">{}</div><div class=\"sub\">{} bytes</div></div>",
        t.docs,
        esc(&fmt_int(t.docs)),
        esc(&t.bytes.checked_div(t.docs).map_or_else(|| "\u{2013}".into(), fmt_bytes)),
        t.bytes,
        esc(&fmt_bytes(t.bytes)),
        esc(&fmt_int(t.bytes)),
    );
    let _ = write!(
        o,
        "<div class=\"card\" data-tokens=\"{}\"><div class=\"lbl\">Tokens</div><div class=\"num\">{}</div><div class=\"sub\">{}</div></div>",
        t.tokens.map_or_else(String::new, |n| n.to_string()),
        esc(&t.tokens.map_or_else(|| "\u{2013}".into(), fmt_compact)),
        esc(&match t.tokens {
            Some(n) => format!("{} with {}", fmt_int(n), d.tokenizer),
            None => "not counted".into(),
        }),
    );
    o.push_str("</div>");
    if !d.breakdowns.is_empty() {
        o.push_str("<div class=\"cards small\">");
    }
    for b in &d.breakdowns {
        let _ = write!(
            o,
            "<div class=\"card\" data-facet=\"{}\" data-distinct=\"{}\"><div class=\"lbl\">{}</div><div class=\"num\">{}</div></div>",
            esc(&b.facet),
            b.rows.len(),
            esc(&plural_facet(&b.facet, b.rows.len())),
            esc(&fmt_int(b.rows.len() as u64))
        );
    }
    if !d.breakdowns.is_empty() {
        o.push_str("</div>");
    }
    o.push_str("</section>\n");
}

fn policy(o: &mut String, d: &Datasheet, p: &PolicySummary) {
    let held = &p.held_back;
    let kind = if !p.set {
        "info"
    } else if held.docs > 0 {
        ""
    } else {
        "ok"
    };
    let _ = write!(
        o,
        "<section id=\"policy\" class=\"callout {kind}\"><h2>License policy</h2>"
    );
    if p.set {
        o.push_str("<p>Allowed classes: ");
        for (i, c) in p.allowed_classes.iter().enumerate() {
            let _ = write!(
                o,
                "{}<span class=\"sw\" style=\"background:{}\"></span>{}",
                if i > 0 { ", " } else { "" },
                class_colour(c),
                esc(c)
            );
        }
        if p.allowed_classes.is_empty() {
            o.push_str("none");
        }
        o.push_str(".</p>");
    } else {
        o.push_str("<p>No license policy is set: every license class is allowed.</p>");
    }
    if held.docs == 0 {
        o.push_str("<p>The policy held nothing back.</p></section>\n");
        return;
    }
    if p.overridden {
        let _ = write!(
            o,
            "<p><strong>Policy overridden</strong> (<code>--override-policy</code>): the documents it would hold back are counted in this datasheet.</p>"
        );
    }
    let matched = d.totals.docs + if p.overridden { 0 } else { held.docs };
    let _ = write!(
        o,
        "<p class=\"big\" data-held-docs=\"{}\">{} documents held back ({} of what the selection matched)</p><p>{} of text{}.</p>",
        held.docs,
        esc(&fmt_int(held.docs)),
        esc(&fmt_pct(held.docs, matched)),
        esc(&fmt_bytes(held.bytes)),
        esc(&held.tokens.map_or_else(String::new, |t| format!(", {} tokens", fmt_int(t)))),
    );
    // Kept versus held back, as one bar.
    let bar_w = W - 20.0;
    let kept_w = bar_w * d.totals.docs as f64 / matched as f64;
    let _ = write!(
        o,
        "<svg viewBox=\"0 0 {W} 34\" data-chart=\"policy\" role=\"img\" aria-label=\"kept and held-back documents\">\
         <rect class=\"seg\" data-part=\"kept\" data-docs=\"{}\" x=\"0\" y=\"4\" width=\"{:.2}\" height=\"24\" fill=\"{BLUE}\" rx=\"3\"><title>kept: {} documents</title></rect>\
         <rect class=\"seg\" data-part=\"held\" data-docs=\"{}\" x=\"{:.2}\" y=\"4\" width=\"{:.2}\" height=\"24\" fill=\"#f59e0b\" rx=\"3\"><title>held back: {} documents</title></rect>",
        d.totals.docs,
        kept_w,
        esc(&fmt_int(d.totals.docs)),
        held.docs,
        kept_w,
        bar_w - kept_w,
        esc(&fmt_int(held.docs)),
    );
    if kept_w > 120.0 {
        let _ = write!(
            o,
            "<text class=\"in\" x=\"8\" y=\"20\">kept {}</text>",
            esc(&fmt_pct(d.totals.docs, matched))
        );
    }
    o.push_str("</svg>");
    if !p.held_back_licenses.is_empty() {
        o.push_str("<div class=\"wrap\"><table><thead><tr><th>Held-back license</th><th>Class</th><th class=\"n\">Documents</th><th class=\"n\">Bytes</th><th class=\"n\">Tokens</th></tr></thead><tbody>");
        for r in p.held_back_licenses.iter().take(MAX_TABLE_ROWS) {
            let _ = write!(
                o,
                "<tr><td>{}</td><td>{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td></tr>",
                esc(&r.value),
                class_cell(r.class.as_deref()),
                esc(&fmt_int(r.counts.docs)),
                esc(&fmt_bytes(r.counts.bytes)),
                esc(&fmt_tokens(r.counts.tokens)),
            );
        }
        o.push_str("</tbody></table></div>");
    }
    o.push_str("</section>\n");
}

fn breakdown(o: &mut String, d: &Datasheet, b: &Breakdown, m: Measure) {
    let id = section_id(&b.facet);
    let _ = write!(
        o,
        "<section id=\"{}\"><h2>{}<small>{} {}</small></h2>",
        esc(&id),
        esc(&facet_title(&b.facet)),
        esc(&fmt_int(b.rows.len() as u64)),
        esc(&plural_facet(&b.facet, b.rows.len()))
    );
    if b.rows.is_empty() {
        o.push_str("<p class=\"lead\">Nothing to show.</p></section>\n");
        return;
    }
    let is_class = b.facet == "license_class";
    let with_class = b.rows.iter().any(|r| r.class.is_some());
    if is_class {
        class_stack(o, b, &d.totals, m);
    } else {
        bar_chart(o, b, &d.totals, m, with_class);
        if with_class {
            let mut classes: Vec<&str> = b.rows.iter().filter_map(|r| r.class.as_deref()).collect();
            classes.sort_by_key(|c| (class_rank(c), normalize_class(c)));
            classes.dedup_by(|a, b| normalize_class(a) == normalize_class(b));
            o.push_str("<div class=\"legend\">");
            for c in classes {
                let _ = write!(
                    o,
                    "<span><span class=\"sw\" style=\"background:{}\"></span>{}</span>",
                    class_colour(c),
                    esc(c)
                );
            }
            o.push_str("</div>");
        }
    }
    // The exact numbers.
    let t = &d.totals;
    let _ = write!(
        o,
        "<div class=\"wrap\"><table><thead><tr><th>{}</th>",
        esc(&facet_noun(&b.facet))
    );
    if with_class {
        o.push_str("<th>Class</th>");
    }
    o.push_str("<th class=\"n\">Documents</th><th class=\"n\">%</th><th class=\"n\">Bytes</th><th class=\"n\">%</th><th class=\"n\">Tokens</th><th class=\"n\">%</th></tr></thead><tbody>");
    for r in b.rows.iter().take(MAX_TABLE_ROWS) {
        let c = &r.counts;
        let _ = write!(o, "<tr data-value=\"{}\"><td>", esc(&r.value));
        if is_class {
            let _ = write!(
                o,
                "<span class=\"sw\" style=\"background:{}\"></span>",
                class_colour(&r.value)
            );
        }
        let _ = write!(o, "{}</td>", esc(&r.value));
        if with_class {
            let _ = write!(o, "<td>{}</td>", class_cell(r.class.as_deref()));
        }
        let _ = write!(
            o,
            "<td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td></tr>",
            esc(&fmt_int(c.docs)),
            esc(&fmt_pct(c.docs, t.docs)),
            esc(&fmt_bytes(c.bytes)),
            esc(&fmt_pct(c.bytes, t.bytes)),
            esc(&fmt_tokens(c.tokens)),
            esc(&match (c.tokens, t.tokens) {
                (Some(a), Some(b)) => fmt_pct(a, b),
                _ => "\u{2013}".into(),
            }),
        );
    }
    if b.rows.len() > MAX_TABLE_ROWS {
        let _ = write!(
            o,
            "<tr class=\"other\"><td colspan=\"{}\">… and {} more in the JSON report</td></tr>",
            if with_class { 8 } else { 7 },
            esc(&fmt_int((b.rows.len() - MAX_TABLE_ROWS) as u64))
        );
    }
    o.push_str("</tbody></table></div></section>\n");
}

/// Horizontal bars for the top values of a facet: documents on the left,
/// tokens (or bytes) on the right, each scaled to its largest bar.
fn bar_chart(o: &mut String, b: &Breakdown, totals: &Counts, m: Measure, by_class: bool) {
    let (top, other) = top_rows(&b.rows, TOP_N);
    let mut rows: Vec<(String, Counts, Option<&str>, Option<usize>)> = top
        .iter()
        .map(|r| (r.value.clone(), r.counts, r.class.as_deref(), None))
        .collect();
    if let Some((n, c)) = other {
        rows.push((format!("{n} others"), c, None, Some(n)));
    }
    const LABEL_END: f64 = 196.0;
    const COL1: f64 = 210.0;
    const COL2: f64 = 590.0;
    const BAR_MAX: f64 = 250.0;
    const ROW_H: f64 = 26.0;
    const TOP: f64 = 26.0;
    let max_docs = rows.iter().map(|r| r.1.docs).max().unwrap_or(0).max(1) as f64;
    let max_m = rows.iter().map(|r| m.get(&r.1)).max().unwrap_or(0).max(1) as f64;
    let h = TOP + ROW_H * rows.len() as f64 + 4.0;
    let _ = write!(
        o,
        "<svg viewBox=\"0 0 {W} {h}\" data-chart=\"bars\" data-facet=\"{}\" role=\"img\" aria-label=\"{}\">\
         <text class=\"head\" x=\"{COL1}\" y=\"14\">DOCUMENTS</text><text class=\"head\" x=\"{COL2}\" y=\"14\">{}</text>\
         <line x1=\"{COL1}\" y1=\"{}\" x2=\"{COL1}\" y2=\"{}\" stroke=\"#94a3b8\"/><line x1=\"{COL2}\" y1=\"{}\" x2=\"{COL2}\" y2=\"{}\" stroke=\"#94a3b8\"/>",
        esc(&b.facet),
        esc(&facet_title(&b.facet)),
        m.name().to_uppercase(),
        TOP - 2.0,
        h - 2.0,
        TOP - 2.0,
        h - 2.0,
    );
    for (i, (value, c, class, merged)) in rows.iter().enumerate() {
        let y = TOP + ROW_H * i as f64;
        let colour = match (merged, by_class) {
            (Some(_), _) => GREY,
            (None, true) => class.map_or(OTHER_CLASS_COLOUR, class_colour),
            (None, false) => BLUE,
        };
        let colour2 = if by_class || merged.is_some() {
            colour
        } else {
            TEAL
        };
        let amount = m.get(c);
        let _ = write!(
            o,
            "<g class=\"row\" data-value=\"{}\" data-docs=\"{}\" data-bytes=\"{}\" data-tokens=\"{}\"{}>\
             <title>{}: {} documents, {}, {} tokens</title>\
             <text x=\"{LABEL_END}\" y=\"{:.1}\" text-anchor=\"end\">{}</text>",
            esc(value),
            c.docs,
            c.bytes,
            c.tokens.map_or_else(String::new, |t| t.to_string()),
            merged.map_or_else(String::new, |n| format!(" data-other=\"{n}\"")),
            esc(value),
            esc(&fmt_int(c.docs)),
            esc(&fmt_bytes(c.bytes)),
            esc(&fmt_tokens(c.tokens)),
            y + 16.0,
            esc(&truncate(value, 28)),
        );
        for (x, amt, max, total, colour, label, measure) in [
            (
                COL1,
                c.docs,
                max_docs,
                totals.docs,
                colour,
                fmt_compact(c.docs),
                "docs",
            ),
            (
                COL2,
                amount,
                max_m,
                m.get(totals),
                colour2,
                m.fmt_short(amount),
                m.name(),
            ),
        ] {
            let w = BAR_MAX * amt as f64 / max;
            let _ = write!(
                o,
                "<rect class=\"bar\" data-measure=\"{measure}\" data-amount=\"{amt}\" x=\"{x}\" y=\"{:.1}\" width=\"{w:.3}\" height=\"17\" rx=\"2\" fill=\"{colour}\"/>\
                 <text x=\"{:.1}\" y=\"{:.1}\">{} <tspan fill=\"#94a3b8\">· {}</tspan></text>",
                y + 4.0,
                x + w + 6.0,
                y + 16.0,
                esc(&fmt_pct(amt, total)),
                esc(&label),
            );
        }
        o.push_str("</g>");
    }
    o.push_str("</svg>");
}

/// The license classes as one stacked bar for documents and one for the
/// other measure, in the fixed class order and colours, with a legend.
fn class_stack(o: &mut String, b: &Breakdown, totals: &Counts, m: Measure) {
    let mut rows: Vec<&BreakdownRow> = b.rows.iter().collect();
    rows.sort_by_key(|r| (class_rank(&r.value), std::cmp::Reverse(r.counts.docs)));
    const X0: f64 = 110.0;
    const BAR: f64 = W - X0 - 2.0;
    let _ = write!(o, "<svg viewBox=\"0 0 {W} 76\" data-chart=\"class-stack\" role=\"img\" aria-label=\"license classes\">");
    for (k, (label, measure)) in [("DOCUMENTS", "docs"), (m.name(), m.name())]
        .into_iter()
        .enumerate()
    {
        let y = 4.0 + 36.0 * k as f64;
        let get = |c: &Counts| if k == 0 { c.docs } else { m.get(c) };
        let sum: u64 = rows.iter().map(|r| get(&r.counts)).sum::<u64>().max(1);
        let _ = write!(
            o,
            "<text class=\"head\" x=\"0\" y=\"{:.1}\">{}</text>",
            y + 19.0,
            esc(&label.to_uppercase())
        );
        let mut x = X0;
        for r in &rows {
            let amt = get(&r.counts);
            let w = BAR * amt as f64 / sum as f64;
            let _ = write!(
                o,
                "<rect class=\"seg\" data-class=\"{}\" data-measure=\"{measure}\" data-amount=\"{amt}\" x=\"{x:.3}\" y=\"{y:.1}\" width=\"{w:.3}\" height=\"28\" fill=\"{}\"><title>{}: {} ({})</title></rect>",
                esc(&r.value),
                class_colour(&r.value),
                esc(&r.value),
                esc(&if k == 0 { fmt_int(amt) } else { m.fmt_short(amt) }),
                esc(&fmt_pct(amt, sum)),
            );
            if w >= 46.0 {
                let _ = write!(
                    o,
                    "<text class=\"in\" x=\"{:.1}\" y=\"{:.1}\">{}</text>",
                    x + 6.0,
                    y + 19.0,
                    esc(&fmt_pct(amt, sum))
                );
            }
            x += w;
        }
    }
    o.push_str("</svg><div class=\"legend\">");
    for r in &rows {
        let _ = write!(
            o,
            "<span><span class=\"sw\" style=\"background:{}\"></span><b>{}</b> {} of documents, {} of {}</span>",
            class_colour(&r.value),
            esc(&r.value),
            esc(&fmt_pct(r.counts.docs, totals.docs)),
            esc(&fmt_pct(m.get(&r.counts), m.get(totals))),
            m.name()
        );
    }
    o.push_str("</div>");
}

fn withdrawal(o: &mut String, d: &Datasheet, w: &Withdrawal) {
    let (b, a) = (&w.before, &w.after);
    let _ = write!(
        o,
        "<section id=\"withdrawal\"><h2>Withdrawal<small>generation {} → {}</small></h2><p class=\"lead\">What changed between the two generations: {} documents ({}), {} of text{}.</p>",
        w.from_generation,
        w.to_generation,
        esc(&fmt_delta(b.docs, a.docs)),
        esc(&pct_change(b.docs, a.docs)),
        esc(&fmt_delta_with(b.bytes, a.bytes, fmt_bytes)),
        esc(&match (b.tokens, a.tokens) {
            (Some(x), Some(y)) => format!(", {} tokens", fmt_delta(x, y)),
            _ => String::new(),
        }),
    );
    // Totals before and after.
    /// (data key, label, before, after, formatter)
    type Metric<'a> = (&'a str, &'a str, u64, u64, fn(u64) -> String);
    let mut metrics: Vec<Metric> = vec![
        ("docs", "Documents", b.docs, a.docs, fmt_int),
        ("bytes", "Bytes", b.bytes, a.bytes, fmt_bytes),
    ];
    if let (Some(x), Some(y)) = (b.tokens, a.tokens) {
        metrics.push(("tokens", "Tokens", x, y, fmt_int));
    }
    const X0: f64 = 110.0;
    const BAR_MAX: f64 = 560.0;
    let h = 48.0 * metrics.len() as f64 + 4.0;
    let _ = write!(o, "<svg viewBox=\"0 0 {W} {h}\" data-chart=\"withdrawal\" role=\"img\" aria-label=\"totals before and after\">");
    for (i, (key, name, before, after, fmt)) in metrics.iter().enumerate() {
        let y = 4.0 + 48.0 * i as f64;
        let max = (*before).max(*after).max(1) as f64;
        let _ = write!(
            o,
            "<text class=\"head\" x=\"0\" y=\"{:.1}\">{}</text>",
            y + 24.0,
            esc(&name.to_uppercase())
        );
        for (k, (when, amt, colour)) in [("before", *before, GREY), ("after", *after, BLUE)]
            .into_iter()
            .enumerate()
        {
            let yy = y + 20.0 * k as f64;
            let bw = BAR_MAX * amt as f64 / max;
            let _ = write!(
                o,
                "<rect class=\"wbar\" data-metric=\"{key}\" data-when=\"{when}\" data-amount=\"{amt}\" x=\"{X0}\" y=\"{yy:.1}\" width=\"{bw:.3}\" height=\"16\" rx=\"2\" fill=\"{colour}\"/>\
                 <text x=\"{:.1}\" y=\"{:.1}\"><tspan fill=\"#94a3b8\">{when}</tspan> {}</text>",
                X0 + bw + 6.0,
                yy + 13.0,
                esc(&fmt(amt)),
            );
        }
        let _ = write!(
            o,
            "<text x=\"{}\" y=\"{:.1}\" text-anchor=\"end\" font-weight=\"600\" fill=\"{}\">{} ({})</text>",
            W - 4.0,
            y + 24.0,
            if after < before { "#b91c1c" } else { "#15803d" },
            esc(&fmt_delta_with(*before, *after, *fmt)),
            esc(&pct_change(*before, *after)),
        );
    }
    o.push_str("</svg>");
    let classes: std::collections::HashMap<&str, &str> = d
        .breakdowns
        .iter()
        .filter(|b| b.facet == "license_id")
        .flat_map(|b| b.rows.iter())
        .filter_map(|r| Some((r.value.as_str(), r.class.as_deref()?)))
        .collect();
    for (title, noun, facet, rows) in [
        ("By license", "License", "license_id", &w.by_license),
        ("By source", "Source", "source", &w.by_source),
    ] {
        if rows.is_empty() {
            continue;
        }
        let _ = write!(o, "<h3>{title}</h3>");
        let ordered = diff_order(rows);
        let shown: Vec<&DiffRow> = ordered.iter().copied().take(TOP_N).collect();
        diff_chart(o, facet, &shown, |v| {
            classes.get(v).map_or(BLUE, |c| class_colour(c))
        });
        let _ = write!(
            o,
            "<div class=\"wrap\"><table><thead><tr><th>{noun}</th><th class=\"n\">Docs before</th><th class=\"n\">after</th><th class=\"n\">change</th><th class=\"n\">Bytes</th><th class=\"n\">Tokens before</th><th class=\"n\">after</th><th class=\"n\">change</th></tr></thead><tbody>"
        );
        for r in ordered.iter().take(MAX_TABLE_ROWS) {
            let (tb, ta) = (r.before.tokens, r.after.tokens);
            let _ = write!(
                o,
                "<tr data-value=\"{}\"><td>{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n {}\">{}</td><td class=\"n {}\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n {}\">{}</td></tr>",
                esc(&r.value),
                esc(&r.value),
                esc(&fmt_int(r.before.docs)),
                esc(&fmt_int(r.after.docs)),
                sign_class(r.before.docs, r.after.docs),
                esc(&fmt_delta(r.before.docs, r.after.docs)),
                sign_class(r.before.bytes, r.after.bytes),
                esc(&fmt_delta_with(r.before.bytes, r.after.bytes, fmt_bytes)),
                esc(&fmt_tokens(tb)),
                esc(&fmt_tokens(ta)),
                sign_class(tb.unwrap_or(0), ta.unwrap_or(0)),
                esc(&match (tb, ta) {
                    (Some(x), Some(y)) => fmt_delta(x, y),
                    _ => "\u{2013}".into(),
                }),
            );
        }
        o.push_str("</tbody></table></div>");
    }
    o.push_str("</section>\n");
}

/// Per value: the documents before (grey) with the documents after drawn
/// over them, and the change.
fn diff_chart(
    o: &mut String,
    facet: &str,
    rows: &[&DiffRow],
    colour: impl Fn(&str) -> &'static str,
) {
    const LABEL_END: f64 = 196.0;
    const X0: f64 = 210.0;
    const BAR_MAX: f64 = 520.0;
    const ROW_H: f64 = 24.0;
    let max = rows
        .iter()
        .map(|r| r.before.docs.max(r.after.docs))
        .max()
        .unwrap_or(0)
        .max(1) as f64;
    let h = ROW_H * rows.len() as f64 + 6.0;
    let _ = write!(o, "<svg viewBox=\"0 0 {W} {h}\" data-chart=\"diff\" data-facet=\"{}\" role=\"img\" aria-label=\"documents before and after\">", esc(facet));
    for (i, r) in rows.iter().enumerate() {
        let y = 3.0 + ROW_H * i as f64;
        let wb = BAR_MAX * r.before.docs as f64 / max;
        let wa = BAR_MAX * r.after.docs as f64 / max;
        let _ = write!(
            o,
            "<g class=\"drow\" data-value=\"{}\" data-before-docs=\"{}\" data-after-docs=\"{}\"><title>{}: {} → {} documents</title>\
             <text x=\"{LABEL_END}\" y=\"{:.1}\" text-anchor=\"end\">{}</text>\
             <rect class=\"wbar\" data-when=\"before\" data-amount=\"{}\" x=\"{X0}\" y=\"{:.1}\" width=\"{wb:.3}\" height=\"17\" rx=\"2\" fill=\"#e2e8f0\" stroke=\"#cbd5e1\"/>\
             <rect class=\"wbar\" data-when=\"after\" data-amount=\"{}\" x=\"{X0}\" y=\"{:.1}\" width=\"{wa:.3}\" height=\"17\" rx=\"2\" fill=\"{}\"/>\
             <text x=\"{:.1}\" y=\"{:.1}\" fill=\"{}\">{} <tspan fill=\"#94a3b8\">({})</tspan></text></g>",
            esc(&r.value),
            r.before.docs,
            r.after.docs,
            esc(&r.value),
            esc(&fmt_int(r.before.docs)),
            esc(&fmt_int(r.after.docs)),
            y + 13.0,
            esc(&truncate(&r.value, 28)),
            r.before.docs,
            y + 1.0,
            r.after.docs,
            y + 1.0,
            colour(&r.value),
            X0 + wb.max(wa) + 6.0,
            y + 13.0,
            if r.after.docs < r.before.docs { "#b91c1c" } else { "#334155" },
            esc(&fmt_delta(r.before.docs, r.after.docs)),
            esc(&pct_change(r.before.docs, r.after.docs)),
        );
    }
    o.push_str("</svg>");
}

fn signals(o: &mut String, signals: &[SignalSummary]) {
    o.push_str("<section id=\"signals\"><h2>Signals</h2><p class=\"lead\">How each quality signal is distributed, and what common thresholds would remove. Red lines mark thresholds; the shaded side is what a rule removes.</p>");
    // Group by (name, version) in order of first appearance; all sources first.
    let mut groups: Vec<(&str, &str, Vec<&SignalSummary>)> = Vec::new();
    for s in signals {
        match groups
            .iter_mut()
            .find(|g| g.0 == s.name && g.1 == s.version)
        {
            Some(g) => g.2.push(s),
            None => groups.push((&s.name, &s.version, vec![s])),
        }
    }
    for (name, version, mut members) in groups {
        members.sort_by_key(|s| s.source.is_some());
        let _ = write!(
            o,
            "<h3 data-signal=\"{}\">{} <small class=\"lead\">version {}</small></h3><div class=\"grid2\">",
            esc(name),
            esc(name),
            esc(version)
        );
        let alone = members.len() == 1;
        for s in members {
            signal_card(o, s, s.source.is_none() || alone);
        }
        o.push_str("</div>");
    }
    o.push_str("</section>\n");
}

fn signal_card(o: &mut String, s: &SignalSummary, wide: bool) {
    let scope = s.source.as_deref().unwrap_or("all sources");
    let _ = write!(
        o,
        "<div class=\"sig{}\" data-signal=\"{}\" data-source=\"{}\" data-tagged=\"{}\"><h3>{}</h3><p class=\"lead\">{} documents tagged · {} without a value</p>",
        if wide { " wide" } else { "" },
        esc(&s.name),
        esc(s.source.as_deref().unwrap_or("")),
        s.tagged,
        esc(scope),
        esc(&fmt_int(s.tagged)),
        esc(&fmt_int(s.missing)),
    );
    histogram(o, s, if wide { W } else { 460.0 });
    if !s.quantiles.is_empty() {
        o.push_str("<div class=\"wrap\"><table class=\"q\"><thead><tr>");
        for (q, _) in &s.quantiles {
            let _ = write!(o, "<th>{}</th>", esc(&fmt_quantile(*q)));
        }
        o.push_str("</tr></thead><tbody><tr>");
        for (q, v) in &s.quantiles {
            let _ = write!(
                o,
                "<td data-q=\"{q}\" data-v=\"{v}\">{}</td>",
                esc(&fmt_num(*v))
            );
        }
        o.push_str("</tr></tbody></table></div>");
    }
    if !s.thresholds.is_empty() {
        o.push_str("<div class=\"wrap\"><table><thead><tr><th>Rule</th><th>From</th><th class=\"n\">Removes</th><th class=\"n\">Share</th></tr></thead><tbody>");
        for t in &s.thresholds {
            let _ = write!(
                o,
                "<tr data-rule=\"{}\" data-removed=\"{}\"><td><code>{}</code></td><td>{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td></tr>",
                esc(&t.rule),
                t.removed_docs,
                esc(&t.rule),
                esc(&t.source),
                esc(&fmt_int(t.removed_docs)),
                esc(&fmt_share(t.removed_share)),
            );
        }
        o.push_str("</tbody></table></div>");
    }
    o.push_str("</div>");
}

/// A histogram with threshold lines. Bins are drawn equally wide whatever
/// their edges (log-spaced edges give a log axis); a threshold's position is
/// interpolated inside its bin.
fn histogram(o: &mut String, s: &SignalSummary, w: f64) {
    let hist = &s.histogram;
    let n = hist.counts.len();
    const H: f64 = 200.0;
    const Y0: f64 = 34.0;
    const Y1: f64 = 170.0;
    let (x0, x1) = (46.0, w - 14.0);
    if n == 0 || hist.edges.len() != n + 1 {
        let _ = write!(
            o,
            "<svg viewBox=\"0 0 {w} 40\" data-chart=\"histogram\" data-signal=\"{}\"><text x=\"{x0}\" y=\"24\" fill=\"#64748b\">No values to draw.</text></svg>",
            esc(&s.name)
        );
        return;
    }
    let bin_w = (x1 - x0) / n as f64;
    let max = hist.counts.iter().copied().max().unwrap_or(0).max(1) as f64;
    let x_of = |v: f64| -> Option<f64> {
        let (lo, hi) = (hist.edges[0], hist.edges[n]);
        if !(lo..=hi).contains(&v) {
            return None;
        }
        let i = hist
            .edges
            .partition_point(|&e| e <= v)
            .saturating_sub(1)
            .min(n - 1);
        let (a, b) = (hist.edges[i], hist.edges[i + 1]);
        let frac = if b > a { (v - a) / (b - a) } else { 0.0 };
        Some(x0 + bin_w * (i as f64 + frac))
    };
    let _ = write!(
        o,
        "<svg viewBox=\"0 0 {w} {H}\" data-chart=\"histogram\" data-signal=\"{}\" role=\"img\" aria-label=\"histogram of {}\">",
        esc(&s.name),
        esc(&s.name)
    );
    // Shaded removal regions under the bars, lines and labels above them.
    let mut lines = String::new();
    let mut label_row = 0;
    for t in &s.thresholds {
        for (op, v) in rule_cuts(&t.rule) {
            let Some(x) = x_of(v) else { continue };
            let (from, to) = match op {
                "<" | "<=" => (x0, x),
                ">" | ">=" => (x, x1),
                _ => (x, x),
            };
            if to > from {
                let _ = write!(o, "<rect class=\"removed\" x=\"{from:.2}\" y=\"{Y0}\" width=\"{:.2}\" height=\"{}\" fill=\"#ef4444\" fill-opacity=\"0.09\"/>", to - from, Y1 - Y0);
            }
            let label = format!(
                "{op} {} · {} · {}",
                fmt_num(v),
                t.source,
                fmt_share(t.removed_share)
            );
            let right = x > x0 + (x1 - x0) * 0.6;
            let ly = 12.0 + 11.0 * f64::from(label_row % 2);
            label_row += 1;
            let _ = write!(
                lines,
                "<line class=\"threshold\" data-rule=\"{}\" data-cut=\"{v}\" data-x=\"{x:.2}\" x1=\"{x:.2}\" y1=\"{:.1}\" x2=\"{x:.2}\" y2=\"{Y1}\" stroke=\"#dc2626\" stroke-width=\"1.5\" stroke-dasharray=\"4 3\"/>\
                 <text class=\"cut\" x=\"{:.2}\" y=\"{ly:.1}\" text-anchor=\"{}\">{}</text>",
                esc(&t.rule),
                ly + 3.0,
                if right { x - 3.0 } else { x + 3.0 },
                if right { "end" } else { "start" },
                esc(&label),
            );
        }
    }
    for (i, &c) in hist.counts.iter().enumerate() {
        let bh = (Y1 - Y0) * c as f64 / max;
        let _ = write!(
            o,
            "<rect class=\"hbar\" data-count=\"{c}\" data-lo=\"{}\" data-hi=\"{}\" x=\"{:.2}\" y=\"{:.2}\" width=\"{:.2}\" height=\"{bh:.2}\" fill=\"#60a5fa\"><title>{} – {}: {} documents</title></rect>",
            hist.edges[i],
            hist.edges[i + 1],
            x0 + bin_w * i as f64 + 0.5,
            Y1 - bh,
            (bin_w - 1.0).max(0.5),
            esc(&fmt_num(hist.edges[i])),
            esc(&fmt_num(hist.edges[i + 1])),
            esc(&fmt_int(c)),
        );
    }
    o.push_str(&lines);
    // Axes: count at the top left, edge values below.
    let _ = write!(
        o,
        "<line x1=\"{x0}\" y1=\"{Y1}\" x2=\"{x1}\" y2=\"{Y1}\" stroke=\"#94a3b8\"/>\
         <text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\" fill=\"#94a3b8\">{}</text><text x=\"{:.1}\" y=\"{Y1}\" text-anchor=\"end\" fill=\"#94a3b8\">0</text>",
        x0 - 4.0,
        Y0 + 8.0,
        esc(&fmt_compact(max as u64)),
        x0 - 4.0,
    );
    let ticks = if w > 600.0 { 6 } else { 4 };
    let mut last = None;
    for k in 0..=ticks {
        let i = k * n / ticks;
        if last == Some(i) {
            continue;
        }
        last = Some(i);
        let x = x0 + bin_w * i as f64;
        let anchor = if k == 0 {
            "start"
        } else if k == ticks {
            "end"
        } else {
            "middle"
        };
        let _ = write!(
            o,
            "<line x1=\"{x:.2}\" y1=\"{Y1}\" x2=\"{x:.2}\" y2=\"{:.1}\" stroke=\"#94a3b8\"/><text x=\"{x:.2}\" y=\"{:.1}\" text-anchor=\"{anchor}\">{}</text>",
            Y1 + 4.0,
            Y1 + 17.0,
            esc(&fmt_num(hist.edges[i])),
        );
    }
    o.push_str("</svg>");
}

fn attributions(o: &mut String, a: &[Attribution]) {
    o.push_str("<section id=\"attributions\"><h2>Attributions</h2>");
    if a.is_empty() {
        o.push_str("<p class=\"lead\">No source in this selection has a license that requires attribution.</p></section>\n");
        return;
    }
    let missing: u64 = a.iter().map(|e| e.missing).sum();
    let _ = write!(
        o,
        "<p class=\"lead\">These sources' licenses require attribution: credit them when you distribute data or models made from this selection.{}</p>",
        if missing > 0 {
            format!(" <span class=\"badge\">{} documents carry no attribution string</span>", esc(&fmt_int(missing)))
        } else {
            String::new()
        }
    );
    o.push_str("<div class=\"wrap\"><table><thead><tr><th>Source</th><th>License</th><th class=\"n\">Documents</th><th>Attribution</th><th class=\"n\">Without</th></tr></thead><tbody>");
    for e in a.iter().take(MAX_TABLE_ROWS) {
        let _ = write!(
            o,
            "<tr data-source=\"{}\" data-license=\"{}\" data-docs=\"{}\" data-missing=\"{}\"><td>{}</td><td>{}</td><td class=\"n\">{}</td><td>",
            esc(&e.source),
            esc(&e.license_id),
            e.docs,
            e.missing,
            esc(&e.source),
            esc(&e.license_id),
            esc(&fmt_int(e.docs)),
        );
        if e.attributions.is_empty() {
            o.push_str("<i>none given</i>");
        } else {
            o.push_str("<ul class=\"plain\">");
            for s in &e.attributions {
                let _ = write!(o, "<li>{}</li>", esc(s));
            }
            o.push_str("</ul>");
        }
        let _ = write!(
            o,
            "</td><td class=\"n\"><span class=\"badge{}\">{}</span></td></tr>",
            if e.missing == 0 { " ok" } else { "" },
            esc(&fmt_int(e.missing))
        );
    }
    o.push_str("</tbody></table></div></section>\n");
}

fn withdrawal_log(o: &mut String, log: &[WithdrawalLogEntry]) {
    let docs: u64 = log.iter().map(|e| e.withdrawn.docs).sum();
    let _ = write!(
        o,
        "<section id=\"withdrawal-log\"><h2>Withdrawal log</h2><p class=\"lead\">{} {} withdrew {} documents from the whole corpus; each is recorded for good, also after <code>compact</code> drops the documents.</p>",
        esc(&fmt_int(log.len() as u64)),
        if log.len() == 1 { "delete" } else { "deletes" },
        esc(&fmt_int(docs)),
    );
    o.push_str("<div class=\"wrap\"><table><thead><tr><th class=\"n\">Gen.</th><th>Date (UTC)</th><th>Delete</th><th class=\"n\">Documents</th><th class=\"n\">Bytes</th><th>Licenses</th><th>Sources</th><th>Files</th></tr></thead><tbody>");
    for e in log.iter().take(MAX_TABLE_ROWS) {
        let (date, time) = date_time(e.unix);
        let _ = write!(
            o,
            "<tr data-generation=\"{}\" data-docs=\"{}\"><td class=\"n\">{}</td><td style=\"white-space:nowrap\">{} {}</td><td class=\"mono\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            e.generation,
            e.withdrawn.docs,
            e.generation,
            esc(&date),
            esc(&time),
            esc(&e.query),
            esc(&fmt_int(e.withdrawn.docs)),
            esc(&fmt_bytes(e.withdrawn.bytes)),
            esc(&top_values(&e.by_license, 5)),
            esc(&top_values(&e.by_source, 5)),
            if e.compacted { "dropped by compact" } else { "tombstoned" },
        );
    }
    o.push_str("</tbody></table></div></section>\n");
}

fn ingest_log(o: &mut String, log: &[IngestEntry]) {
    o.push_str("<section id=\"ingest-log\"><h2>Ingest log</h2>");
    if log.is_empty() {
        o.push_str("<p class=\"lead\">No ingest log was recorded.</p></section>\n");
        return;
    }
    let added: u64 = log.iter().map(|e| e.docs_added).sum();
    let rejected: u64 = log.iter().map(|e| e.rejected).sum();
    let size: u64 = log.iter().map(|e| e.size).sum();
    let _ = write!(
        o,
        "<p class=\"lead\">{} files, {}: {} documents added, {} records rejected.</p>",
        esc(&fmt_int(log.len() as u64)),
        esc(&fmt_bytes(size)),
        esc(&fmt_int(added)),
        esc(&fmt_int(rejected)),
    );
    o.push_str("<div class=\"wrap\"><table><thead><tr><th>File</th><th class=\"n\">Size</th><th>XXH3-128</th><th>Started (UTC)</th><th class=\"n\">Took</th><th class=\"n\">Added</th><th class=\"n\">Rejected</th><th class=\"n\">Gen.</th></tr></thead><tbody>");
    for e in log.iter().take(MAX_TABLE_ROWS) {
        let (date, time) = date_time(e.started_unix);
        let _ = write!(
            o,
            "<tr data-file=\"{}\" data-docs=\"{}\"><td class=\"path\">{}</td><td class=\"n\">{}</td><td class=\"mono hash\">{}</td><td style=\"white-space:nowrap\">{} {}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td></tr>",
            esc(&e.file),
            e.docs_added,
            esc(&e.file).replace('/', "/<wbr>"),
            esc(&fmt_bytes(e.size)),
            esc(&e.xxh3_128),
            esc(&date),
            esc(&time),
            esc(&fmt_duration(e.finished_unix.saturating_sub(e.started_unix))),
            esc(&fmt_int(e.docs_added)),
            esc(&fmt_int(e.rejected)),
            e.generation,
        );
    }
    if log.len() > MAX_TABLE_ROWS {
        let _ = write!(
            o,
            "<tr class=\"other\"><td colspan=\"8\">… and {} more in the JSON report</td></tr>",
            esc(&fmt_int((log.len() - MAX_TABLE_ROWS) as u64))
        );
    }
    o.push_str("</tbody></table></div></section>\n");
}

/// A class name with its colour swatch, or a dash.
fn class_cell(class: Option<&str>) -> String {
    match class {
        Some(c) => format!(
            "<span class=\"sw\" style=\"background:{}\"></span>{}",
            class_colour(c),
            esc(c)
        ),
        None => "\u{2013}".into(),
    }
}

/// `neg` or `pos` for a table cell showing a change.
fn sign_class(before: u64, after: u64) -> &'static str {
    match after.cmp(&before) {
        std::cmp::Ordering::Less => "neg",
        std::cmp::Ordering::Greater => "pos",
        std::cmp::Ordering::Equal => "",
    }
}

/// A change formatted with `fmt` and a sign.
fn fmt_delta_with(before: u64, after: u64, fmt: fn(u64) -> String) -> String {
    match after.cmp(&before) {
        std::cmp::Ordering::Equal => "0".into(),
        std::cmp::Ordering::Greater => format!("+{}", fmt(after - before)),
        std::cmp::Ordering::Less => format!("\u{2212}{}", fmt(before - after)),
    }
}

/// A section id from a facet name: letters, digits, `-` and `_` kept.
fn section_id(facet: &str) -> String {
    let id: String = facet
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '-'
            }
        })
        .collect();
    if id.is_empty() {
        "facet".into()
    } else {
        id
    }
}

/// At most `max` characters, with an ellipsis when cut.
fn truncate(s: &str, max: usize) -> Cow<'_, str> {
    if s.chars().count() <= max {
        Cow::Borrowed(s)
    } else {
        let cut: String = s.chars().take(max - 1).collect();
        Cow::Owned(cut + "\u{2026}")
    }
}

/// HTML-escapes text for element content and double- or single-quoted
/// attribute values; NUL and other C0 controls but tab and newline become
/// U+FFFD.
pub(crate) fn esc(s: &str) -> Cow<'_, str> {
    if !s.chars().any(|c| {
        matches!(c, '&' | '<' | '>' | '"' | '\'') || (c.is_control() && c != '\n' && c != '\t')
    }) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 16);
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            '\n' | '\t' => out.push(c),
            c if c.is_control() => out.push('\u{fffd}'),
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::super::tests::sample;
    use super::*;

    #[test]
    fn user_strings_are_escaped() {
        let mut d = sample();
        d.title = "<b>title</b>".into();
        d.notes
            .push("a \"quoted\" <img src=x onerror=alert(2)> & 'single'".into());
        d.signals[0].source = Some("<script>alert(3)</script>".into());
        d.signals[0].thresholds[0].source = "<script>alert(4)</script>".into();
        let html = to_html(&d);
        assert!(
            html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"),
            "license value escaped"
        );
        for bad in [
            "<script>alert",
            "<img src=x",
            "<b>title</b>",
            "onerror=alert(2)>",
        ] {
            assert!(!html.contains(bad), "raw {bad} in the page");
        }
        // Only the page's own two scripts.
        assert_eq!(html.matches("<script").count(), 2);
        assert!(html.contains(
            "a &quot;quoted&quot; &lt;img src=x onerror=alert(2)&gt; &amp; &#39;single&#39;"
        ));
        assert_eq!(esc("plain"), "plain");
        assert_eq!(esc("a\u{0}b"), "a\u{fffd}b");
    }

    #[test]
    fn self_contained() {
        let html = to_html(&sample());
        for external in [
            "http:",
            "https:",
            "src=",
            "<link",
            "url(",
            "@import",
            "@font-face",
        ] {
            assert!(!html.contains(external), "page references {external}");
        }
        assert!(html.contains("Content-Security-Policy"));
    }

    #[test]
    fn sections_and_chart_data() {
        let d = sample();
        let html = to_html(&d);
        for id in [
            "totals",
            "policy",
            "withdrawal",
            "signals",
            "license_id",
            "source",
            "attributions",
            "ingest-log",
            "notes",
        ] {
            assert!(
                html.contains(&format!("<section id=\"{id}\""))
                    || html.contains(&format!("<section id=\"{id}\" ")),
                "no #{id}"
            );
        }
        // Bars carry their numbers and are proportional to them: the largest
        // license has 10,000 documents and gets the full 250 units.
        assert!(html.contains("data-measure=\"docs\" data-amount=\"10000\" x=\"210\" y=\"30.0\" width=\"250.000\""), "{html}");
        assert!(html.contains(
            "data-measure=\"docs\" data-amount=\"2345\" x=\"210\" y=\"56.0\" width=\"58.625\""
        ));
        // The threshold line sits at 50 of 0..100 over two bins.
        assert!(html.contains("data-cut=\"50\""));
        let x0 = 46.0;
        let x1 = W - 14.0;
        assert!(html.contains(&format!("data-x=\"{:.2}\"", x0 + (x1 - x0) / 2.0)));
        assert!(html.contains("data-metric=\"docs\" data-when=\"before\" data-amount=\"12400\""));
    }

    #[test]
    fn empty_and_odd_datasheets_render() {
        let html = to_html(&Datasheet::default());
        assert!(html.contains("<section id=\"totals\""));
        assert!(html.contains("No ingest log was recorded."));
        let mut d = sample();
        d.signals[0].histogram = Histogram::default();
        d.breakdowns[0].rows.clear();
        d.totals = Counts::default();
        let html = to_html(&d);
        assert!(html.contains("No values to draw."));
        for bad in ["NaN", "inf\"", "=\"inf", "-inf"] {
            assert!(!html.contains(bad), "{bad} in the page");
        }
    }

    #[test]
    fn without_tokens_bars_show_bytes() {
        let mut d = sample();
        d.totals.tokens = None;
        for b in &mut d.breakdowns {
            for r in &mut b.rows {
                r.counts.tokens = None;
            }
        }
        d.withdrawal = None;
        d.signals.clear();
        let html = to_html(&d);
        assert!(html.contains(">BYTES</text>"));
        assert_eq!(html.matches("data-measure=\"bytes\"").count(), 3);
        assert!(!html.contains("data-measure=\"tokens\""));
        // The largest license by bytes gets the full bar.
        assert!(html.contains("data-measure=\"bytes\" data-amount=\"40000000\" x=\"590\" y=\"30.0\" width=\"250.000\""));
        assert!(!html.contains("id=\"signals\"") && !html.contains("id=\"withdrawal\""));
        let md = to_markdown(&d);
        assert!(
            md.contains("| Selected | 12,345 | 43.6 MiB (45,678,901) | \u{2013} |"),
            "{md}"
        );
    }

    #[test]
    fn many_rows_merge_into_other() {
        let mut d = sample();
        d.breakdowns[1].rows = (0..40)
            .map(|i| BreakdownRow {
                value: format!("source-{i:02}"),
                counts: Counts {
                    docs: 100 - i,
                    bytes: 1000,
                    tokens: Some(10),
                },
                class: None,
            })
            .collect();
        let html = to_html(&d);
        let bars = html.matches("data-measure=\"docs\"").count();
        // 2 license bars + 12 source bars (11 + "others").
        assert_eq!(bars, 2 + TOP_N);
        let rest: u64 = (11..40).map(|i| 100 - i).sum();
        assert!(html.contains(&format!("data-value=\"29 others\" data-docs=\"{rest}\"")));
    }
}
