/**
 * The report page: one self-contained HTML file (inline CSS, inline SVG, a few lines of inline
 * JS to sort the table), so it opens offline from a file, an MLflow artifact or a chat message.
 */
import { basename } from 'node:path';
import { compareColumns, formatValue } from '../query/cells.js';
import { rankedBy } from '../config/metric.js';
import { bestPoint, type ReportData } from './data.js';
import { curvesPanel, historyPanel, importancePanel, parallelPanel, tagsPanel, type Panel } from './panels.js';
import { esc, fmt } from './svg.js';

const CSS = `body{font:14px system-ui,sans-serif;margin:24px;color:#222;max-width:1100px}h1{font-size:20px}h2{font-size:16px;margin:0 0 8px}h3{font-size:13px;font-weight:normal;margin:12px 0 4px}
section{border:1px solid #ddd;border-radius:6px;padding:12px;margin:12px 0}.note{color:#666;font-style:italic}.progress{color:#b35900;font-weight:bold}
table{border-collapse:collapse;font-size:12px}th,td{border:1px solid #ddd;padding:2px 6px;text-align:right}th{cursor:pointer;background:#f4f4f4}td:first-child,th:first-child{text-align:left}
.diff td{text-align:left}svg{max-width:100%;height:auto;font-family:system-ui,sans-serif}`;

/** Sorts the table by a clicked header: numbers numerically, text as text, empty cells last; a second click reverses. */
const JS = `document.querySelectorAll('table.sortable th').forEach(function(th,i){th.addEventListener('click',function(){var t=th.closest('table'),b=t.tBodies[0],d=th.dataset.dir==='asc'?'desc':'asc';th.dataset.dir=d;
var rows=Array.prototype.slice.call(b.rows);rows.sort(function(x,y){var a=x.cells[i].textContent,c=y.cells[i].textContent;if(a===''||c==='')return a===''?(c===''?0:1):-1;var na=Number(a),nc=Number(c);var r=isNaN(na)||isNaN(nc)?a.localeCompare(c):na-nc;return d==='asc'?r:-r});rows.forEach(function(r){b.appendChild(r)})})});`;

/** Marks a page as exp's, so --out may replace it next time. */
export const GENERATOR = '<meta name="generator" content="exp report">';

const when = (iso: string | null): string => (iso ? iso.replace('T', ' ').replace(/\.\d+Z$/, ' UTC') : 'unknown');
const duration = (s: number): string => (s >= 3600 ? `${(s / 3600).toFixed(1)} h` : s >= 60 ? `${(s / 60).toFixed(1)} min` : `${Math.round(s)} s`);

function summarySection(d: ReportData): string {
  const c = d.counts;
  const known = d.finished.length;
  const status = ['completed', 'pruned', 'failed', 'running', 'killed', 'interrupted', 'planned']
    .filter((s) => c[s])
    .map((s) => `${c[s]} ${s}`)
    .join(', ');
  const progress = d.inProgress ? `<p class="progress" data-in-progress="1">in progress: ${known} of ${d.planned} points known</p>` : '';
  const best = bestPoint(d);
  const diff = best
    ? d.table.paths
        .filter((p) => p in best.row.params)
        .map(
          (p) =>
            `<tr><td>${esc(p)}</td><td>${esc(p in d.base ? formatValue(d.base[p]) : '(not set)')}</td><td><b>${esc(formatValue(best.row.params[p]))}</b></td></tr>`,
        )
        .join('')
    : '';
  const bestHtml = best
    ? `<h3>Best point: <b data-best="${esc(best.row.name)}">${esc(best.row.name)}</b>, ${esc(d.ranking.metric)} = ${fmt(best.value!)}${best.row.best ? ` (best epoch ${best.row.best.epoch})` : ''}</h3>
<p>${esc(best.row.dir)}</p>${diff ? `<table class="diff"><tr><th>setting</th><th>base</th><th>best point</th></tr>${diff}</table>` : ''}`
    : `<p class="note">no point has ${esc(d.ranking.metric)} yet</p>`;
  return `<section data-panel="summary"><h2>${esc(d.experiment)} / ${esc(d.sweep)}</h2>${progress}
<p>file ${esc(d.file ?? 'unknown')}${d.commit ? `, commit ${esc(d.commit.slice(0, 12))}` : ''}, planned ${esc(when(d.created))}; ${esc(rankedBy(d.ranking))}</p>
<p>${d.planned} point${d.planned === 1 ? '' : 's'}: ${esc(status || 'none')}; ${d.totalEpochs} epochs in ${duration(d.totalSeconds)} of training</p>${bestHtml}</section>`;
}

function tableSection(d: ReportData): string {
  const { headers, row } = compareColumns(d.table);
  const head = `<tr>${['point', ...headers].map((h) => `<th>${esc(h)}</th>`).join('')}</tr>`;
  const body = d.table.rows.map((r) => `<tr>${[r.name, ...row(r)].map((c) => `<td>${esc(c)}</td>`).join('')}</tr>`).join('\n');
  return `<section data-panel="table"><h2>All points, best first (as exp compare; click a header to sort)</h2><table class="sortable"><thead>${head}</thead><tbody>${body}</tbody></table></section>`;
}

const panelHtml = (p: Panel): string =>
  `<section data-panel="${p.id}"><h2>${esc(p.title)}</h2>${p.note ? `<p class="note">${esc(p.note)}</p>` : ''}${p.body}</section>`;

/** The report's chart panels, in page order (also what `exp report --png` rasterises). */
export const reportPanels = (d: ReportData): Panel[] => [historyPanel(d), curvesPanel(d), parallelPanel(d), importancePanel(d), tagsPanel(d)];

/** The whole page. */
export function reportHtml(d: ReportData): string {
  const panels = reportPanels(d);
  const title = `exp report: ${d.experiment} / ${basename(d.dir)}`;
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8">${GENERATOR}<title>${esc(title)}</title><style>${CSS}</style></head>
<body><h1>${esc(title)}</h1>
${summarySection(d)}
${panels.map(panelHtml).join('\n')}
${tableSection(d)}
<p class="note">Written by exp report on ${esc(when(new Date().toISOString()))}.</p>
<script>${JS}</script></body></html>
`;
}
