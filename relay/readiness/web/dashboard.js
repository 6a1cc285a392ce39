// turnwall readiness: the security team's dashboard. Everything an agent's
// browser sent is shown with textContent, never parsed as HTML.
'use strict';
(function () {
  const $ = (id) => document.getElementById(id);
  function el(tag, text, cls) {
    const e = document.createElement(tag);
    if (text !== undefined && text !== null) e.textContent = String(text);
    if (cls) e.className = cls;
    return e;
  }
  function cell(tr, text, cls) { tr.appendChild(el('td', text, cls)); }

  function group(g) {
    const sec = el('section');
    sec.appendChild(el('h2', g.group ? 'Agents group ' + g.group : 'Sources in no agents group'));
    const v = g.verdicts || {};
    sec.appendChild(el('p', g.results + ' results: ' + (v['ready'] || 0) + ' ready, ' + (v['degraded'] || 0) + ' degraded, ' + (v['not-ready'] || 0) + ' not ready'));
    const t = el('table', null, 'matrix');
    const head = el('tr');
    for (const h of ['Server', 'Transport', 'OK', 'Failed', 'Rule', 'Latest failure']) head.appendChild(el('th', h));
    const thead = el('thead'); thead.appendChild(head); t.appendChild(thead);
    const tb = el('tbody');
    for (const c of g.cells || []) {
      const tr = el('tr');
      cell(tr, c.label);
      cell(tr, c.transport);
      cell(tr, c.ok, 'cell ok');
      cell(tr, c.failed, c.failed ? 'cell fail' : 'cell');
      cell(tr, c.rule ? c.rule + ' (' + c.line + ')' : '');
      cell(tr, c.explanation || '');
      tb.appendChild(tr);
    }
    t.appendChild(tb);
    sec.appendChild(t);
    return sec;
  }

  function trend(points) {
    const box = $('trend');
    box.textContent = '';
    for (const p of points) {
      const row = el('div');
      row.appendChild(el('span', p.hour.replace('T', ' ').slice(0, 16) + '  '));
      for (const [k, cls] of [['ready', 'ready'], ['degraded', 'degraded'], ['not_ready', 'not-ready']]) {
        const b = el('span', null, 'bar ' + cls);
        b.style.width = Math.min(p[k] * 6, 600) + 'px';
        b.title = p[k] + ' ' + cls;
        row.appendChild(b);
      }
      row.appendChild(el('span', '  ' + p.ready + ' / ' + p.degraded + ' / ' + p.not_ready));
      box.appendChild(row);
    }
  }

  async function load() {
    const r = await fetch('/api/dashboard', { credentials: 'same-origin' });
    if (!r.ok) { $('groups').textContent = 'The dashboard could not be loaded (HTTP ' + r.status + ').'; return; }
    const d = await r.json();
    $('policy').textContent = d.policy;
    const gs = $('groups');
    gs.textContent = '';
    for (const g of d.groups) gs.appendChild(group(g));
    if (!d.groups.length) gs.appendChild(el('p', 'No results yet: send agents to this server\'s address.'));
    trend(d.trend);
    const tb = $('recent').tBodies[0];
    tb.textContent = '';
    for (const rec of d.recent) {
      const tr = el('tr');
      const at = el('td');
      const a = el('a', rec.at);
      a.href = '/?result=' + encodeURIComponent(rec.id);
      at.appendChild(a);
      tr.appendChild(at);
      cell(tr, rec.group || '(none)');
      cell(tr, rec.source);
      cell(tr, rec.verdict, rec.verdict === 'ready' ? 'ok' : 'fail');
      cell(tr, rec.summary);
      tb.appendChild(tr);
    }
    document.body.dataset.loaded = '1';
  }
  load();
  setInterval(load, 30000);
})();
