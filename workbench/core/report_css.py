"""The report page's inline style sheet (workbench.core.report_html puts it in a <style> element)."""

CSS = """
:root { --ink: #1d2330; --dim: #667085; --line: #e3e6ec; --soft: #f6f7f9; --good: #1a7f37; --bad: #b42318;
        --reason: #eef4fb; --reason-edge: #8fb3de; --answer: #edf8ef; --answer-edge: #6cbf84; }
* { box-sizing: border-box; }
body { margin: 0 auto; max-width: 1180px; padding: 24px 28px 64px; color: var(--ink); background: #fff;
       font: 14px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif; }
h1 { font-size: 22px; margin: 0 0 2px; }
h2 { font-size: 18px; margin: 36px 0 8px; padding-bottom: 4px; border-bottom: 2px solid var(--line); }
h3 { font-size: 15px; margin: 22px 0 6px; }
h4 { font-size: 13px; margin: 12px 0 6px; text-transform: uppercase; letter-spacing: .04em; color: var(--dim); }
code, pre { font: 12.5px/1.45 ui-monospace, SFMono-Regular, Menlo, Consolas, "DejaVu Sans Mono", monospace; }
pre { background: var(--soft); border: 1px solid var(--line); border-radius: 6px; padding: 10px 12px;
      white-space: pre-wrap; overflow-wrap: anywhere; margin: 6px 0; }
a { color: inherit; text-decoration: none; }
a:hover { text-decoration: underline; }
.meta, .note { color: var(--dim); font-size: 13px; margin: 2px 0 8px; }
ul.note { padding-left: 18px; }
nav { margin: 12px 0; display: flex; flex-wrap: wrap; gap: 6px 18px; }
.swatch { display: inline-block; width: 11px; height: 11px; border-radius: 3px; margin-right: 6px;
          vertical-align: -1px; }
table { border-collapse: collapse; margin: 6px 0 10px; font-size: 13px; }
th, td { text-align: left; padding: 4px 12px 4px 0; border-bottom: 1px solid var(--line); vertical-align: top; }
th { color: var(--dim); font-weight: 600; white-space: nowrap; }
td code { overflow-wrap: anywhere; }
table.runs { width: 100%; }
table.runs td { white-space: nowrap; }
.wide { overflow-x: auto; }
.num { font-variant-numeric: tabular-nums; }
.state { font-weight: 600; }
.state.completed { color: var(--good); }
.state.failed, .state.killed, .state.lost { color: var(--bad); }
.bad { color: var(--bad); }
.good { color: var(--good); }
.dim { color: var(--dim); }
.grid { display: grid; grid-template-columns: repeat(auto-fill, minmax(460px, 1fr)); gap: 14px; }
figure { margin: 0; border: 1px solid var(--line); border-radius: 8px; padding: 6px; }
figure img { width: 100%; height: auto; display: block; }
figcaption { font-size: 12px; color: var(--dim); padding: 2px 4px; }
dl.facts { display: grid; grid-template-columns: max-content 1fr; gap: 3px 16px; margin: 8px 0; }
dl.facts dt { color: var(--dim); }
dl.facts dd { margin: 0; overflow-wrap: anywhere; }
dl.facts pre { margin: 0; }
details { margin: 8px 0; }
summary { cursor: pointer; font-weight: 600; }
.pair { display: grid; grid-template-columns: repeat(auto-fit, minmax(420px, 1fr)); gap: 14px; align-items: start; }
.samples { display: grid; gap: 10px; }
.samples h4 { margin: 4px 0 0; }
details.small summary { font-weight: normal; font-size: 12px; color: var(--dim); }
.sample { border: 1px solid var(--line); border-left: 4px solid var(--line); border-radius: 6px; padding: 8px 12px; }
.sample.best { border-left-color: var(--good); }
.sample.worst { border-left-color: var(--bad); }
.sample .head { display: flex; flex-wrap: wrap; gap: 4px 14px; font-size: 13px; margin-bottom: 6px; }
.sample .reward { font-weight: 700; }
.sample .fn.good { color: var(--good); }
.sample .fn.bad { color: var(--bad); }
.prompt, .part, .free { margin: 5px 0; }
.prompt .body, .part .body, .free { white-space: pre-wrap; overflow-wrap: anywhere; }
.prompt .body { font-weight: 600; }
.tag { display: inline-block; font-size: 11px; text-transform: uppercase; letter-spacing: .05em; color: var(--dim);
       margin-bottom: 1px; }
.part { border-left: 3px solid; border-radius: 4px; padding: 4px 10px; }
.part.reasoning { background: var(--reason); border-color: var(--reason-edge); font-style: italic; }
.part.answer { background: var(--answer); border-color: var(--answer-edge); font-weight: 600; }
.free { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, "DejaVu Sans Mono", monospace; font-size: 12.5px;
        background: var(--soft); border-radius: 4px; padding: 4px 10px; }
section.run { margin-top: 44px; }
@media print { .grid { grid-template-columns: 1fr 1fr; } details { display: block; } }
"""
