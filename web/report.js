// moesim HTML report page script. moesim inlines it, with Vega, Vega-Lite and vega-embed, into each
// report (sim/report/html_report.cpp) next to the report's data (script#moesim-data); it draws the charts
// of that data with Vega-Lite. Plain browser JavaScript, no bundler: the page must open offline.
// Each chart's Vega view is kept in window.moesimViews[name]; window.moesimReady turns true once
// every chart has rendered (the browser test, web/check_reports.mjs, waits for it and counts marks).
(function () {
  'use strict';

  const data = JSON.parse(document.getElementById('moesim-data').textContent);
  const root = document.getElementById('report');
  const pending = [];
  window.moesimViews = {};

  // ---------------------------------------------------------------------------------------------
  // Page helpers

  function el(tag, attrs, children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(attrs || {})) node.setAttribute(key, value);
    for (const child of [].concat(children || [])) {
      node.appendChild(typeof child === 'string' ? document.createTextNode(child) : child);
    }
    return node;
  }

  function section(title, note) {
    const s = el('section', {}, [el('h2', {}, title)]);
    if (note) s.appendChild(el('p', { class: 'note' }, note));
    root.appendChild(s);
    return s;
  }

  function cards(items) {
    root.appendChild(el('div', { class: 'cards' }, items.map(([label, value, cls]) =>
      el('div', { class: 'card ' + (cls || '') }, [el('div', { class: 'value' }, value), el('div', { class: 'label' }, label)]))));
  }

  const config = {
    font: 'system-ui, -apple-system, "Segoe UI", Roboto, sans-serif',
    axis: { labelFontSize: 11, titleFontSize: 12, titleFontWeight: 600, gridColor: '#e8e8e8' },
    legend: { labelFontSize: 11, titleFontSize: 12 },
    title: { fontSize: 14, anchor: 'start' },
    view: { stroke: '#ddd' },
  };

  // Renders a Vega-Lite spec into `parent` as chart `name` (SVG, so text stays sharp when zoomed),
  // as wide as its box unless the spec sets a width.
  function chart(parent, name, spec) {
    const div = el('div', { class: 'chart', id: 'chart-' + name });
    parent.appendChild(div);
    spec = Object.assign({
      $schema: 'https://vega.github.io/schema/vega-lite/v6.json', config: config,
      width: 'container', autosize: { type: 'fit-x', contains: 'padding' },
    }, spec);
    pending.push(vegaEmbed(div, spec, { actions: false, renderer: 'svg' }).then((result) => {
      window.moesimViews[name] = result.view;
    }));
  }

  function row(parent) {
    const r = el('div', { class: 'row' });
    parent.appendChild(r);
    return r;
  }

  const fmt = {
    pct: (x) => (100 * x).toFixed(1) + '%',
    gb: (b) => (b / 1e9).toFixed(1) + ' GB',
    billions: (n) => (n / 1e9).toFixed(1) + 'B',
    num: (x) => Number(x).toLocaleString('en-US', { maximumSignificantDigits: 4 }),
    seconds: (s) => (s >= 1 ? s.toFixed(2) + ' s' : (1e3 * s).toFixed(1) + ' ms'),
  };

  // "TP8 PP16×2 EP32 ETP1 DP48 mb2": parallel sizes (PP × virtual stages); CP only when used.
  function parallelText(l) {
    return [`TP${l.tp}`, `PP${l.pp}` + (l.vpp > 1 ? `×${l.vpp}` : ''), `EP${l.ep}`, `ETP${l.etp}`]
      .concat(l.cp > 1 ? [`CP${l.cp}`] : []).concat([`DP${l.dp}`, `mb${l.micro_batch}`]).join(' ');
  }
  // "interleaved, selective recompute, EP+TP overlap"
  function scheduleText(l) {
    const overlap = [l.overlap && l.overlap.ep_all_to_all ? 'EP' : '', l.overlap && l.overlap.tp_comm ? 'TP' : '']
      .filter((x) => x).join('+');
    return `${l.schedule}, ${l.recompute} recompute` + (overlap ? `, ${overlap} overlap` : '');
  }
  const layoutText = (l) => `${parallelText(l)} · ${scheduleText(l)}`;

  // Time components of a breakdown ({compute_s, exposed_tp_s, ...}), in stacking order.
  const TIME_PARTS = [
    ['compute_s', 'compute', '#4c78a8'],
    ['exposed_tp_s', 'exposed TP comm', '#f58518'],
    ['exposed_ep_s', 'exposed EP comm', '#e45756'],
    ['exposed_cp_s', 'exposed CP comm', '#ff9da6'],
    ['exposed_pp_s', 'exposed PP comm', '#b279a2'],
    ['exposed_dp_s', 'exposed DP comm', '#9d755d'],
    ['exposed_swap_s', 'exposed swap', '#eeca3b'],
    ['bubble_s', 'pipeline bubble', '#bab0ac'],
    ['optimizer_s', 'optimizer', '#54a24b'],
  ];
  const MEMORY_PARTS = [
    ['weights', 'weights', '#4c78a8'],
    ['gradients', 'gradients', '#72b7b2'],
    ['optimizer', 'optimizer states', '#54a24b'],
    ['activations', 'activations', '#f58518'],
    ['buffers', 'buffers', '#b279a2'],
    ['reserve', 'framework reserve', '#bab0ac'],
  ];

  // Long-format rows {config, order, part, value, ...} of the parts that are non-zero somewhere, so
  // that the legend lists only what occurs.
  function stackRows(items, parts, valueOf, scale) {
    const used = parts.filter(([key]) => items.some((it) => valueOf(it, key) > 0));
    const rows = [];
    items.forEach((it, i) => used.forEach(([key, label], p) => rows.push(Object.assign({
      config: it.label, order: i, part: label, part_order: p, value: valueOf(it, key) * scale,
      share: valueOf(it, key) / it.total,
    }, it.extra || {}))));
    return { rows: rows, used: used };
  }

  // Horizontal stacked bars, one per config (in the given order), plus optional vertical rules.
  function stackedBars(parent, name, stack, opts) {
    const layers = [{
      name: 'bars',
      data: { values: stack.rows },
      mark: { type: 'bar', height: { band: 0.75 } },
      encoding: {
        y: { field: 'config', type: 'nominal', sort: { field: 'order' }, title: null, axis: { labelLimit: 320 } },
        x: { field: 'value', type: 'quantitative', stack: 'zero', title: opts.xTitle },
        color: {
          field: 'part', type: 'nominal', title: null,
          scale: { domain: stack.used.map((u) => u[1]), range: stack.used.map((u) => u[2]) },
          legend: { orient: 'bottom', columns: Math.min(stack.used.length, 6) },
        },
        order: { field: 'part_order' },
        tooltip: [{ field: 'config', title: opts.configTitle || 'configuration' }, { field: 'part', title: 'part' },
          { field: 'value', title: opts.xTitle, format: opts.format }, { field: 'share', title: 'share', format: '.1%' }]
          .concat(opts.extraTooltip || []),
      },
    }];
    if (opts.rules) {
      layers.push({
        name: 'capacity',
        data: { values: opts.rules },
        mark: { type: 'rule', color: '#d62728', strokeDash: [6, 3], strokeWidth: 2 },
        encoding: { x: { field: 'value', type: 'quantitative' },
          tooltip: [{ field: 'label', title: 'limit' }, { field: 'value', title: opts.xTitle, format: opts.format }] },
      });
    }
    const bands = new Set(stack.rows.map((r) => r.config)).size;
    chart(parent, name, { height: Math.max(40, 26 * bands), layer: layers });
  }

  // ---------------------------------------------------------------------------------------------
  // Sweep report

  const AXIS_TITLE = { layers: 'layers', hidden: 'hidden', heads: 'heads', experts: 'experts', top_k: 'top-k',
    expert_intermediate: 'expert ffn', shared_experts: 'shared', first_dense_layers: 'dense layers' };
  const AXIS_SHORT = { layers: 'L', hidden: 'h', heads: 'heads', experts: 'E', top_k: 'top', expert_intermediate: 'ffn',
    shared_experts: 'shared', first_dense_layers: 'dense' };

  // sweep --emit-args: the GPT_ARGS block that runs the point's layout, folded under its layout.
  const launchArgs = (p) => p.launch_args
    ? [el('details', { class: 'launch-args' }, [el('summary', {}, 'launch arguments'), el('pre', {}, p.launch_args)])]
    : [];

  function drawSweep() {
    const points = data.points;
    const axes = Object.keys(points.length ? points[0].model : {}).filter((k) =>
      new Set(points.map((p) => p.model[k])).size > 1);
    const frontActive = new Set(data.front_mfu_active);
    const frontMemory = new Set(data.front_tokens_memory);
    const rankOf = new Map(data.ranked.map((index, r) => [index, r + 1]));
    const modelText = (p) => axes.length ? axes.map((k) => AXIS_SHORT[k] + p.model[k]).join(' ') : 'base model';
    const rows = points.map((p) => ({
      index: p.index,
      model: modelText(p),
      layout: layoutText(p.layout),
      parallel: parallelText(p.layout),
      schedule: scheduleText(p.layout),
      active_b: p.params.active / 1e9,
      total_b: p.params.total / 1e9,
      mfu_pct: 100 * p.mfu,
      tokens_per_s: p.tokens_per_s,
      iteration_s: p.iteration_time_s,
      peak_gb: p.peak_memory_bytes / 1e9,
      objective: p.objective,
      front_active: frontActive.has(p.index) ? 'Pareto front' : 'dominated',
      front_memory: frontMemory.has(p.index) ? 'Pareto front' : 'dominated',
      rank: rankOf.get(p.index) || '–',
    }));
    const byIndex = new Map(points.map((p) => [p.index, p]));
    const rowByIndex = new Map(rows.map((r) => [r.index, r]));
    const best = data.ranked.length ? rowByIndex.get(data.ranked[0]) : null;

    root.appendChild(el('h1', {}, 'moesim sweep report'));
    root.appendChild(el('p', { class: 'subtitle' }, `${data.source} · ranked by ${data.objective}`));
    cards([
      ['model points', String(data.counts.points)],
      ['fit and ranked', String(data.counts.ok), 'good'],
      ['do not fit', String(data.counts.no_fit)],
      ['infeasible', String(data.counts.infeasible)],
    ].concat(best ? [
      ['#1: MFU', best.mfu_pct.toFixed(1) + '%', 'good'], ['#1: tokens/s', fmt.num(best.tokens_per_s)],
      ['#1 by ' + data.objective + ': point ' + best.index, best.model, 'wide'],
    ] : []));

    const tooltip = [
      { field: 'index', title: 'point' }, { field: 'rank', title: 'rank' }, { field: 'model', title: 'model' },
      { field: 'total_b', title: 'total params (B)', format: '.1f' },
      { field: 'active_b', title: 'active params (B)', format: '.2f' },
      { field: 'mfu_pct', title: 'MFU %', format: '.2f' }, { field: 'tokens_per_s', title: 'tokens/s', format: ',.0f' },
      { field: 'iteration_s', title: 'iteration (s)', format: '.2f' },
      { field: 'peak_gb', title: 'peak memory (GB)', format: '.1f' }, { field: 'layout', title: 'layout' },
    ];
    const frontColor = { domain: ['Pareto front', 'dominated'], range: ['#d62728', '#9ecae1'] };
    function pareto(parent, name, x, y, frontField, extraLayers) {
      const front = rows.filter((r) => r[frontField] === 'Pareto front').sort((a, b) => a[x.field] - b[x.field]);
      chart(parent, name, {
        height: 340,
        layer: [{
          name: 'front_line',
          data: { values: front },
          mark: { type: 'line', color: '#d62728', strokeWidth: 1.5, opacity: 0.6 },
          encoding: { x: { field: x.field, type: 'quantitative' }, y: { field: y.field, type: 'quantitative' } },
        }, {
          name: 'points',
          data: { values: rows },
          mark: { type: 'point', filled: true, size: 70, opacity: 0.85, stroke: 'white', strokeWidth: 0.5 },
          encoding: {
            x: { field: x.field, type: 'quantitative', title: x.title, scale: { zero: false, nice: true } },
            y: { field: y.field, type: 'quantitative', title: y.title, scale: { zero: false, nice: true } },
            color: { field: frontField, type: 'nominal', title: null, scale: frontColor, legend: { orient: 'bottom' } },
            size: { condition: { test: `datum.${frontField} === 'Pareto front'`, value: 120 }, value: 60 },
            order: { field: frontField, sort: 'descending' },
            tooltip: tooltip,
          },
        }].concat(extraLayers || []),
      });
    }
    const s1 = section('Pareto fronts', 'Every configuration that fits (each point on its best layout). Red: no other point beats it on both axes. Hover a point for its model, layout and numbers.');
    const r1 = row(s1);
    pareto(r1, 'pareto_active', { field: 'active_b', title: 'activated parameters per token (B)' },
      { field: 'mfu_pct', title: 'MFU %' }, 'front_active');
    const capacity = points.length ? points[0].memory.capacity / 1e9 : 0;
    pareto(r1, 'pareto_memory', { field: 'peak_gb', title: 'peak memory per device (GB)' },
      { field: 'tokens_per_s', title: 'tokens/s' }, 'front_memory', [{
        name: 'capacity',
        data: { values: [{ peak_gb: capacity, label: 'device memory' }] },
        mark: { type: 'rule', color: '#d62728', strokeDash: [6, 3] },
        encoding: { x: { field: 'peak_gb', type: 'quantitative' },
          tooltip: [{ field: 'label', title: 'limit' }, { field: 'peak_gb', title: 'GB', format: '.1f' }] },
      }]);

    // Ranked table (click a header to sort).
    const top = data.ranked.map((index) => rowByIndex.get(index));
    const s2 = section(`Top ${top.length} configurations by ${data.objective}`,
      'Click a column header to sort. Layout: PP8×2 is 8 pipeline stages of 2 virtual chunks each; mb: micro-batch size.');
    const columns = [['rank', 'rank', (r) => r.rank], ['index', 'point', (r) => r.index]]
      .concat(axes.map((k) => [k, AXIS_TITLE[k], (r) => byIndex.get(r.index).model[k]]))
      .concat([
        ['total_b', 'total B', (r) => r.total_b, (v) => v.toFixed(1)],
        ['active_b', 'active B', (r) => r.active_b, (v) => v.toFixed(2)],
        ['mfu_pct', 'MFU %', (r) => r.mfu_pct, (v) => v.toFixed(2)],
        ['tokens_per_s', 'tokens/s', (r) => r.tokens_per_s, (v) => Math.round(v).toLocaleString('en-US')],
        ['iteration_s', 'iteration s', (r) => r.iteration_s, (v) => v.toFixed(2)],
        ['peak_gb', 'peak GB', (r) => r.peak_gb, (v) => v.toFixed(1)],
        ['layout', 'layout', (r) => r.layout, null, (r) => [r.parallel, el('div', { class: 'detail' }, r.schedule)]
          .concat(launchArgs(byIndex.get(r.index)))],
      ]);
    const table = el('table', { class: 'ranked', id: 'ranked-table' });
    const head = el('tr', {}, columns.map(([key, title]) => el('th', { 'data-key': key }, title)));
    const body = el('tbody');
    table.appendChild(el('thead', {}, head));
    table.appendChild(body);
    let sortKey = 'rank', ascending = true;
    function fillTable() {
      const column = columns.find((c) => c[0] === sortKey);
      const sorted = top.slice().sort((a, b) => {
        const va = column[2](a), vb = column[2](b);
        const order = typeof va === 'number' ? va - vb : String(va).localeCompare(String(vb));
        return ascending ? order : -order;
      });
      body.replaceChildren(...sorted.map((r) => el('tr', {}, columns.map(([, , get, show, cell]) =>
        el('td', {}, cell ? cell(r) : show ? show(get(r)) : String(get(r)))))));
      head.querySelectorAll('th').forEach((th) => {
        th.className = th.dataset.key === sortKey ? (ascending ? 'sorted-asc' : 'sorted-desc') : '';
      });
    }
    head.querySelectorAll('th').forEach((th) => th.addEventListener('click', () => {
      ascending = th.dataset.key === sortKey ? !ascending : true;
      sortKey = th.dataset.key;
      fillTable();
    }));
    fillTable();
    s2.appendChild(el('div', { class: 'table-wrap' }, table));

    const items = top.map((r) => {
      const p = byIndex.get(r.index);
      return { label: `#${r.rank}  ${r.model}`, line: p, extra: { layout: r.layout } };
    });
    const s3 = section('Where the time goes', 'One training iteration of the critical pipeline stage, for the top configurations.');
    stackedBars(s3, 'time_breakdown', stackRows(items.map((it) => Object.assign(it, {
      total: it.line.iteration_time_s, extra: { iteration_s: it.line.iteration_time_s, layout: it.extra.layout } })),
    TIME_PARTS, (it, key) => it.line.breakdown[key], 1), {
      xTitle: 'seconds per iteration', format: '.3f',
      extraTooltip: [{ field: 'iteration_s', title: 'iteration (s)', format: '.3f' }, { field: 'layout', title: 'layout' }],
    });
    const s4 = section('Memory of the fullest stage', 'Per device, against the device memory (dashed line).');
    const memoryItems = top.map((r) => {
      const m = byIndex.get(r.index).memory;
      const total = MEMORY_PARTS.reduce((sum, [key]) => sum + m[key], 0);
      return { label: `#${r.rank}  ${r.model}`, m: m, total: total, extra: { stage: m.stage, layout: r.layout } };
    });
    const capacities = [...new Set(memoryItems.map((it) => it.m.capacity))];
    stackedBars(s4, 'memory_breakdown', stackRows(memoryItems, MEMORY_PARTS, (it, key) => it.m[key], 1e-9), {
      xTitle: 'GB per device', format: '.1f', extraTooltip: [{ field: 'stage', title: 'stage' }, { field: 'layout', title: 'layout' }],
      rules: capacities.map((c) => ({ value: c / 1e9, label: 'device memory' })),
    });
  }

  // ---------------------------------------------------------------------------------------------
  // Simulation report

  function passKind(name) {
    if (name.startsWith('send')) return 'p2p send';
    if (name.includes('+')) return 'forward+backward (fused)';
    return { F: 'forward', B: 'backward', W: 'weight gradient' }[name[0]] || 'other';
  }

  function drawSimulation() {
    const l = data.layout;
    const b = data.time_breakdown;
    const mem = data.memory;
    root.appendChild(el('h1', {}, `${data.model} on ${l.devices} × ${data.hardware}`));
    root.appendChild(el('p', { class: 'subtitle' }, layoutText(l) + ` · global batch ${l.global_batch} × ${l.seq_len} tokens, ${l.microbatches} microbatches, ${l.precision}`));
    cards([
      ['iteration', fmt.seconds(data.iteration_time_s)],
      ['MFU', fmt.pct(data.mfu), 'good'],
      ['HFU', fmt.pct(data.hfu)],
      ['tokens/s', fmt.num(data.tokens_per_s)],
      ['TFLOP/s per device', data.tflops_per_device.toFixed(1)],
      ['pipeline bubble', fmt.pct(data.pipeline_bubble_fraction)],
      ['peak memory', `${fmt.gb(mem.peak_bytes)} of ${fmt.gb(mem.capacity_bytes)}`, mem.fits ? 'good wide' : 'bad wide'],
    ]);
    for (const w of data.warnings) root.appendChild(el('p', { class: 'warning' }, 'warning: ' + w));

    const s1 = section('Where the time goes', `One iteration of the critical stage (stage ${b.critical_stage}); expert load imbalance (busiest EP rank, max/mean) ${data.expert_imbalance.toFixed(2)}.`);
    stackedBars(s1, 'time_breakdown', stackRows([{ label: `stage ${b.critical_stage}`, total: data.iteration_time_s }],
      TIME_PARTS, (it, key) => b[key], 1), { xTitle: 'seconds per iteration', format: '.3f', configTitle: 'stage' });

    const s2 = section('Memory per pipeline stage', 'Per device, against the device memory (dashed line).');
    stackedBars(s2, 'memory_breakdown', stackRows(mem.stages.map((s) => ({ label: `stage ${s.stage}`, s: s, total: s.total })),
      MEMORY_PARTS, (it, key) => it.s[key], 1e-9), {
      xTitle: 'GB per device', format: '.1f', configTitle: 'stage',
      rules: [{ value: mem.capacity_bytes / 1e9, label: 'device memory' }],
    });

    // Pass level: one bar per pass, coloured by pass. Operator level (simulate --op-level): one bar per
    // operator, one row per stream of each stage, coloured by what the operator does.
    const opLevel = data.timeline_level === 'operator';
    const STREAMS = ['compute', 'tp comm', 'ep comm', 'cp comm', 'p2p send', 'dp comm', 'host copy'];
    const streamIndex = (row) => Math.max(0, STREAMS.findIndex((s) => row.endsWith(' ' + s)));
    const tasks = data.timeline.map((t) => {
      const kind = opLevel ? t.category : passKind(t.name);
      return {
        name: t.name, kind: kind, stage: t.stage, row: t.stream,
        row_order: opLevel ? STREAMS.length * t.stage + streamIndex(t.stream) : 2 * t.stage + (kind === 'p2p send' ? 1 : 0),
        start: t.start_ms, end: t.start_ms + t.duration_ms, duration: t.duration_ms,
      };
    });
    const rowsCount = new Set(tasks.map((t) => t.row)).size;
    const palette = opLevel
      ? { compute: '#4c78a8', tp_comm: '#f58518', ep_comm: '#e45756', cp_comm: '#72b7b2', pp_comm: '#8c8c8c',
        dp_comm: '#54a24b', host_copy: '#b279a2', host: '#9d755d', optimizer: '#eeca3b', other: '#999999' }
      : { forward: '#4c78a8', backward: '#f58518', 'weight gradient': '#54a24b',
        'forward+backward (fused)': '#b279a2', 'p2p send': '#bab0ac', other: '#999999' };
    const kinds = Object.keys(palette).filter((k) => tasks.some((t) => t.kind === k));
    const what = opLevel ? 'operator' : 'pass';
    const s3 = opLevel
      ? section('Operator timeline', `Every operator of every stage on its stream (${tasks.length} operators, ${data.layout.schedule} schedule): compute, TP, EP and CP collectives, pipeline sends, DP buckets, host copies; drag to pan, scroll to zoom, hover for the operator. The same timeline as the Chrome trace (--op-level --trace) for Perfetto.`)
      : section('Pipeline timeline', `Every pass of every stage (${tasks.length} tasks, ${data.layout.schedule} schedule); drag to pan, scroll to zoom, hover for the pass. The same timeline as the Chrome trace (--trace) for Perfetto.`);
    chart(s3, 'timeline', {
      height: Math.max(60, (opLevel ? 10 : 13) * rowsCount),  // an operator timeline has 7 streams a stage
      data: { values: tasks },
      params: [{ name: 'zoom', select: { type: 'interval', encodings: ['x'] }, bind: 'scales' }],
      mark: { type: 'bar', height: { band: 0.85 }, strokeWidth: 0.6 },
      encoding: {
        // Sends last microseconds: an outline keeps them visible at any zoom.
        stroke: { condition: { test: "datum.kind === 'p2p send'", value: '#8c8c8c' }, value: null },
        y: { field: 'row', type: 'nominal', sort: { field: 'row_order' }, title: null, axis: { labelFontSize: opLevel ? 9 : 10 } },
        x: { field: 'start', type: 'quantitative', title: 'time (ms)', axis: { labelOverlap: true, labelSeparation: 6 } },
        x2: { field: 'end' },
        color: { field: 'kind', type: 'nominal', title: null,
          scale: { domain: kinds, range: kinds.map((k) => palette[k]) },
          legend: { orient: 'bottom' } },
        tooltip: [{ field: 'name', title: what }, { field: 'row', title: 'where' }, { field: 'kind', title: 'kind' },
          { field: 'start', title: 'start (ms)', format: '.2f' }, { field: 'duration', title: 'duration (ms)', format: '.2f' }],
      },
    });
  }

  // ---------------------------------------------------------------------------------------------
  // Validation report

  const METRICS = {
    mfu: { title: 'MFU', unit: '%', scale: 100, format: '.1f' },
    tflops_per_device: { title: 'TFLOP/s per device', unit: 'TFLOP/s', scale: 1e-12, format: '.0f' },
    tokens_per_s: { title: 'tokens/s', unit: 'tokens/s', scale: 1, format: ',.0f' },
    iteration_time_s: { title: 'iteration time', unit: 's', scale: 1, format: '.2f' },
    memory: { title: 'peak memory per device', unit: 'GB', scale: 1e-9, format: '.1f' },
  };

  function drawValidation() {
    const runs = data.runs.filter((r) => !r.skipped);
    const s = data.summary;
    root.appendChild(el('h1', {}, 'moesim validation: predicted against measured'));
    root.appendChild(el('p', { class: 'subtitle' }, `${runs.length} runs scored, ${data.runs.length - runs.length} listed but skipped`));
    cards([['MAPE', s.mape_pct.toFixed(1) + '%', 'good'], ['max |error|', s.max_abs_error_pct.toFixed(1) + '%'],
      ['runs', String(s.count)]].concat(Object.entries(s.by_hardware).map(([hw, v]) =>
      [`${hw}: MAPE (max) of ${v.count} run${v.count > 1 ? 's' : ''}`,
        v.mape_pct.toFixed(1) + '% (' + v.max_abs_error_pct.toFixed(1) + '%)']))
      .concat(s.memory && s.memory.count ? [[`memory: MAPE of ${s.memory.count} runs`, s.memory.mape_pct.toFixed(1) + '%']] : [])
      .concat(s.predicted_not_to_fit ? [['ran, but predicted not to fit', String(s.predicted_not_to_fit), 'bad']] : []));

    const hardware = [...new Set(runs.map((r) => r.hardware))].sort();
    const tooltip = [{ field: 'id', title: 'run' }, { field: 'hardware', title: 'hardware' },
      { field: 'metric', title: 'metric' }, { field: 'measured', title: 'measured', format: '.4~g' },
      { field: 'predicted', title: 'predicted', format: '.4~g' }, { field: 'error_pct', title: 'error %', format: '+.1f' },
      { field: 'fits', title: 'fits in memory' }];
    const s1 = section('Predicted against measured', 'One chart per reported metric, log scales. Diagonal: prediction = measurement; shaded bands: ±10% (green) and ±20% (red). ×: moesim predicts that the run does not fit in memory. Hover a point for the run.');
    const r1 = row(s1);
    for (const metric of Object.keys(METRICS).concat([...new Set(runs.map((r) => r.metric))].filter((m) => !METRICS[m]))) {
      const m = METRICS[metric] || { title: metric, unit: '', scale: 1, format: '.3~g' };
      const points = runs.filter((r) => r.metric === metric).map((r) => Object.assign({}, r, {
        x: r.measured * m.scale, y: r.predicted * m.scale, measured: r.measured * m.scale, predicted: r.predicted * m.scale,
      }));
      if (!points.length) continue;
      const values = points.flatMap((p) => [p.x, p.y]);
      // Log scales: a relative error is the same distance from the diagonal at any size.
      const lo = Math.min(...values) / 1.25, hi = Math.max(...values) * 1.25;
      const band = [lo, hi].map((x) => ({ x: x, y: x, lo10: 0.9 * x, hi10: 1.1 * x, lo20: 0.8 * x, hi20: 1.2 * x }));
      const scale = { type: 'log', domain: [lo, hi], nice: false };
      const xy = (field) => ({ field: field, type: 'quantitative', scale: scale });
      chart(r1, 'validation_' + metric, {
        height: 340,
        title: `${m.title} (${points.length} runs)`,
        layer: [
          { name: 'band20', data: { values: band }, mark: { type: 'area', color: '#e45756', opacity: 0.08, clip: true },
            encoding: { x: Object.assign(xy('x'), { title: `measured ${m.unit}` }), y: Object.assign(xy('lo20'), { title: `predicted ${m.unit}` }), y2: { field: 'hi20' } } },
          { name: 'band10', data: { values: band }, mark: { type: 'area', color: '#54a24b', opacity: 0.15, clip: true },
            encoding: { x: xy('x'), y: xy('lo10'), y2: { field: 'hi10' } } },
          { name: 'identity', data: { values: band }, mark: { type: 'line', color: '#555', strokeDash: [4, 3], clip: true },
            encoding: { x: xy('x'), y: xy('y') } },
          { name: 'points', data: { values: points },
            mark: { type: 'point', filled: true, size: 70, opacity: 0.85, stroke: 'white', strokeWidth: 0.5 },
            encoding: { x: xy('x'), y: xy('y'),
              color: { field: 'hardware', type: 'nominal', title: 'hardware', scale: { domain: hardware, scheme: 'tableau10' } },
              shape: { condition: { test: '!datum.fits', value: 'cross' }, value: 'circle' },
              tooltip: tooltip } },
        ],
      });
    }

    const errors = runs.slice().sort((a, b) => a.error_pct - b.error_pct).map((r, i) => Object.assign({ order: i }, r));
    const s2 = section('Signed error of every run', '(predicted − measured) / measured, sorted; dashed lines at ±10% and ±20%.');
    chart(s2, 'errors', {
      height: 260,
      layer: [
        { name: 'bars', data: { values: errors }, mark: { type: 'bar' },
          encoding: {
            x: { field: 'id', type: 'nominal', sort: { field: 'order' }, title: `runs (${errors.length})`, axis: { labels: false, ticks: false } },
            y: { field: 'error_pct', type: 'quantitative', title: 'error %' },
            color: { field: 'hardware', type: 'nominal', title: 'hardware', scale: { domain: hardware, scheme: 'tableau10' } },
            tooltip: tooltip } },
        { name: 'limits', data: { values: [-20, -10, 10, 20].map((v) => ({ v: v })) },
          mark: { type: 'rule', strokeDash: [4, 3], color: '#777' }, encoding: { y: { field: 'v', type: 'quantitative' } } },
      ],
    });
  }

  const draw = { sweep: drawSweep, simulation: drawSimulation, validation: drawValidation }[data.kind];
  if (!draw) throw new Error('moesim report: unknown report kind ' + data.kind);
  draw();
  Promise.all(pending).then(() => { window.moesimReady = true; },
    (error) => { console.error('moesim report: a chart failed: ' + error); });
}());
