// Opens moesim HTML reports in headless Chromium (Debian's /usr/bin/chromium, driven by
// playwright-core) and checks that each chart rendered the marks its inputs call for, that hovering
// a point shows its tooltip, that the page logged no error and fetched nothing from the network;
// saves a full-page screenshot of each (of an operator-level simulation: its operator timeline). Exit
// status 1 on any failure. Run by tests/cli/html_reports.sh.
//
//   node web/check_reports.mjs --screenshots DIR
//        [--sweep REPORT.html RESULTS.jsonl SWEEP.json]   (SWEEP.json: moesim sweep --json, same --top)
//        [--simulation REPORT.html TRACE.json SIMULATION.json]
//        [--validation REPORT.html VALIDATION.json]
// Expected counts come from the files moesim wrote next to the report, not from the page.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { chromium } from 'playwright-core';

const CHROMIUM = process.env.MOESIM_CHROMIUM || '/usr/bin/chromium';
const readJson = (file) => JSON.parse(fs.readFileSync(file, 'utf8'));

function parseArgs(argv) {
  const arity = { '--sweep': 3, '--simulation': 3, '--validation': 2, '--screenshots': 1 };
  const reports = [];
  let screenshots = null;
  for (let i = 0; i < argv.length;) {
    const n = arity[argv[i]];
    if (!n || i + n > argv.length - 1) throw new Error(`usage: unexpected or incomplete argument '${argv[i]}'`);
    const values = argv.slice(i + 1, i + 1 + n);
    if (argv[i] === '--screenshots') screenshots = values[0];
    else reports.push({ kind: argv[i].slice(2), files: values });
    i += 1 + n;
  }
  if (!screenshots || reports.length === 0) throw new Error('usage: --screenshots DIR and at least one report');
  return { screenshots, reports };
}

// Parts of a breakdown that are non-zero in at least one of `objects` (the page stacks only those).
const nonZeroParts = (objects, keys) => keys.filter((k) => objects.some((o) => o[k] > 0)).length;
const TIME_KEYS = ['compute_s', 'exposed_tp_s', 'exposed_ep_s', 'exposed_cp_s', 'exposed_pp_s', 'exposed_dp_s',
  'exposed_swap_s', 'bubble_s', 'optimizer_s'];
const MEMORY_KEYS = ['weights', 'gradients', 'optimizer', 'activations', 'buffers', 'reserve'];

// { chart: { mark: count } } that the inputs call for; `tableRows` for the sweep's ranked table.
function expectedMarks(kind, files) {
  if (kind === 'sweep') {
    const lines = fs.readFileSync(files[1], 'utf8').split('\n').filter((l) => l.trim()).map((l) => JSON.parse(l));
    const ok = lines.filter((l) => l.status === 'ok');
    const summary = readJson(files[2]);
    const byIndex = new Map(ok.map((l) => [l.index, l]));
    const top = summary.ranked.map((r) => byIndex.get(r.index));
    const capacities = new Set(top.map((l) => l.memory.capacity)).size;
    return {
      tableRows: top.length,
      charts: {
        pareto_active: { points: ok.length, front_line: summary.pareto.mfu_vs_active_params.length },
        pareto_memory: { points: ok.length, front_line: summary.pareto.tokens_per_s_vs_peak_memory.length, capacity: 1 },
        time_breakdown: { bars: top.length * nonZeroParts(top.map((l) => l.breakdown), TIME_KEYS) },
        memory_breakdown: { bars: top.length * nonZeroParts(top.map((l) => l.memory), MEMORY_KEYS), capacity: capacities },
      },
    };
  }
  if (kind === 'simulation') {
    const trace = readJson(files[1]);
    const sim = readJson(files[2]);
    return {
      charts: {
        time_breakdown: { bars: nonZeroParts([sim.time_breakdown], TIME_KEYS) },
        memory_breakdown: { bars: sim.memory.stages.length * nonZeroParts(sim.memory.stages, MEMORY_KEYS), capacity: 1 },
        timeline: { marks: trace.traceEvents.filter((e) => e.ph === 'X').length },
      },
    };
  }
  const runs = readJson(files[1]).runs.filter((r) => !r.skipped);
  const charts = { errors: { bars: runs.length, limits: 4 } };
  for (const metric of new Set(runs.map((r) => r.metric))) {
    charts['validation_' + metric] = { points: runs.filter((r) => r.metric === metric).length, band20: 2, band10: 2, identity: 2 };
  }
  return { charts };
}

// Counts the scene-graph items of every named mark of every chart on the page.
function countMarks() {
  const result = {};
  for (const [chart, view] of Object.entries(window.moesimViews)) {
    const marks = {};
    (function walk(mark) {
      if (mark.marktype === 'group') {
        for (const item of mark.items) for (const child of item.items || []) walk(child);
      } else if (mark.name) {
        const name = mark.name.replace(/_marks$/, '');
        marks[name] = (marks[name] || 0) + mark.items.length;
      }
    }(view.scenegraph().root));
    result[chart] = marks;
  }
  return result;
}

// Scrolls a visible point or bar of one of chart `name`'s layers into view (the SVG renderer's
// role-mark groups; legends have other roles) and returns the viewport position of its centre. The
// mark, not the chart, is scrolled to: a chart taller than the window may hold it above the fold.
function markPosition(name) {
  const svg = window.moesimViews[name].container().querySelector('svg');
  for (const path of svg.querySelectorAll('g.role-mark.mark-symbol path, g.role-mark.mark-rect path')) {
    let r = path.getBoundingClientRect();
    if (r.width < 3 || r.height < 3) continue;
    path.scrollIntoView({ block: 'center', inline: 'center' });
    r = path.getBoundingClientRect();
    return { x: r.left + r.width / 2, y: r.top + r.height / 2 };
  }
  return null;
}

async function checkReport(context, report, screenshotDir) {
  try {
    return await inspectReport(context, report, screenshotDir);
  } catch (error) {
    console.log(`${report.kind} report ${report.files[0]}: FAILED\n  FAIL ${error.message.split('\n')[0]}`);
    return false;
  }
}

async function inspectReport(context, report, screenshotDir) {
  const [html] = report.files;
  const expected = expectedMarks(report.kind, report.files);
  const failures = [];
  const page = await context.newPage();
  page.setDefaultTimeout(10000);
  page.on('console', (msg) => { if (msg.type() === 'error') failures.push(`console error: ${msg.text()}`); });
  page.on('pageerror', (error) => failures.push(`page error: ${error.message}`));
  page.on('request', (request) => {
    if (!/^(file|data|blob|about):/.test(request.url())) failures.push(`network request (the report must open offline): ${request.url()}`);
  });
  await page.goto('file://' + path.resolve(html), { timeout: 60000 });  // an operator-level report is ~30 MB
  try {
    await page.waitForFunction(() => window.moesimReady === true, null, { timeout: 60000 });
  } catch (error) {
    failures.push('charts did not finish rendering within 60 s');
  }
  const found = await page.evaluate(countMarks);
  const lines = [];
  for (const [chart, marks] of Object.entries(expected.charts)) {
    if (!found[chart]) {
      failures.push(`chart '${chart}' missing`);
      continue;
    }
    for (const [mark, count] of Object.entries(marks)) {
      const got = found[chart][mark];
      lines.push(`  ${chart}.${mark}: ${got} (expected ${count})`);
      if (got !== count) failures.push(`chart '${chart}' mark '${mark}': ${got} items, expected ${count}`);
    }
  }
  for (const [chart, marks] of Object.entries(found)) {
    if (!expected.charts[chart]) failures.push(`unexpected chart '${chart}' (the check does not know what it should hold)`);
    for (const [mark, count] of Object.entries(marks)) {
      if (count === 0) failures.push(`chart '${chart}' mark '${mark}' is empty`);
    }
  }
  if (expected.tableRows !== undefined) {
    const rows = await page.locator('#ranked-table tbody tr').count();
    lines.push(`  ranked table rows: ${rows} (expected ${expected.tableRows})`);
    if (rows !== expected.tableRows) failures.push(`ranked table: ${rows} rows, expected ${expected.tableRows}`);
    // Sorting by a column header reorders the rows.
    await page.locator('#ranked-table th[data-key="peak_gb"]').click();
    const peaks = await page.locator('#ranked-table tbody tr td:nth-last-child(2)').allTextContents();
    const sorted = peaks.map(Number).slice().sort((a, b) => a - b);
    if (peaks.map(Number).join() !== sorted.join()) failures.push(`ranked table not sorted by peak memory after a click: ${peaks}`);
    await page.locator('#ranked-table th[data-key="rank"]').click();
  }
  // Hovering a point of each chart shows its tooltip.
  for (const chart of Object.keys(found)) {
    const at = await page.evaluate(markPosition, chart);
    if (!at) {
      failures.push(`chart '${chart}': no visible point or bar to hover`);
      continue;
    }
    await page.mouse.move(0, 0);
    await page.mouse.move(at.x, at.y, { steps: 4 });
    const tooltip = await page.waitForFunction(() => {
      const t = document.getElementById('vg-tooltip-element');
      return t && t.classList.contains('visible') && t.textContent;
    }, null, { timeout: 3000 }).then((handle) => handle.jsonValue(), () => '');
    if (!tooltip) failures.push(`chart '${chart}': no tooltip when hovering its first mark`);
    else lines.push(`  ${chart} tooltip: ${tooltip.slice(0, 90)}...`);
  }
  await page.mouse.move(0, 0);
  await page.evaluate(() => window.scrollTo(0, 0));
  await page.waitForTimeout(150);
  const shot = path.join(screenshotDir, path.basename(html, '.html') + '.png');
  // An operator-level simulation (simulate --op-level) is pictured by its operator timeline alone: the
  // chart that shows what the pass-level report does not, every operator on its stream.
  const opLevel = report.kind === 'simulation' && readJson(report.files[2]).op_level !== undefined;
  if (opLevel) await page.locator('#chart-timeline').screenshot({ path: shot });
  else await page.screenshot({ path: shot, fullPage: true });
  await page.close();
  console.log(`${report.kind} report ${html}: ${failures.length ? 'FAILED' : 'ok'} -> ${shot}\n${lines.join('\n')}`);
  for (const f of failures) console.log(`  FAIL ${f}`);
  return failures.length === 0;
}

async function main() {
  const { screenshots, reports } = parseArgs(process.argv.slice(2));
  if (!fs.existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} not found: scripts/setup installs Debian's chromium`);
  fs.mkdirSync(screenshots, { recursive: true });
  const profile = fs.mkdtempSync(path.join(os.tmpdir(), 'moesim-chromium-'));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
      '--disable-component-update', '--disable-sync'],
    viewport: { width: 1240, height: 900 },
    deviceScaleFactor: 1,
  });
  let ok = true;
  try {
    for (const report of reports) ok = (await checkReport(context, report, screenshots)) && ok;
  } finally {
    await context.close();
    fs.rmSync(profile, { recursive: true, force: true });
  }
  process.exit(ok ? 0 : 1);
}

main().catch((error) => {
  console.error(`check_reports: ${error.message}`);
  process.exit(1);
});
