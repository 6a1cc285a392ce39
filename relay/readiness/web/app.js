// turnwall readiness: the agent's page. It asks the server for a test
// session (short-lived TURN credentials), gathers candidates from every ICE
// server the policy gives agents, places a short call through each relay to
// the server's media peer, and sends the measurements back; the server
// judges them against the policy and answers with the verdict shown here.
// Every text shown is set with textContent: nothing is parsed as HTML.
'use strict';
(function () {
  const CHECK_MS = 8000;    // per ICE server
  const CONNECT_MS = 10000; // per test call
  const $ = (id) => document.getElementById(id);
  let audio = null; // AudioContext, created on the click (a user gesture)
  let result = null;

  function el(tag, text, cls) {
    const e = document.createElement(tag);
    if (text !== undefined && text !== null) e.textContent = String(text);
    if (cls) e.className = cls;
    return e;
  }

  function progress(text) {
    $('progress').hidden = false;
    $('progress-text').textContent = text;
  }

  async function post(path, body, token) {
    const headers = { 'Content-Type': 'application/json' };
    if (token) headers['Authorization'] = 'Bearer ' + token;
    const r = await fetch(path, { method: 'POST', headers: headers, body: JSON.stringify(body || {}) });
    let j = null;
    try { j = await r.json(); } catch (e) { j = null; }
    if (!r.ok) throw new Error((j && j.error) || ('HTTP ' + r.status));
    return j;
  }

  function iceServer(t) {
    const s = { urls: t.url };
    if (t.username) { s.username = t.username; s.credential = t.credential; }
    return s;
  }

  function sleep(ms) { return new Promise((res) => setTimeout(res, ms)); }

  function gathered(pc, ms) {
    return new Promise((resolve) => {
      if (pc.iceGatheringState === 'complete') { resolve(true); return; }
      const timer = setTimeout(() => resolve(false), ms);
      pc.addEventListener('icegatheringstatechange', () => {
        if (pc.iceGatheringState === 'complete') { clearTimeout(timer); resolve(true); }
      });
    });
  }

  // relayStats returns the relay protocol and URL of the local relay
  // candidate (or of the selected pair's local candidate).
  async function relayStats(pc, pairOnly) {
    const out = {};
    const stats = await pc.getStats();
    let local = null;
    stats.forEach((s) => {
      if (s.type === 'transport' && s.selectedCandidatePairId) {
        const pair = stats.get(s.selectedCandidatePairId);
        if (pair) {
          local = stats.get(pair.localCandidateId) || local;
          if (pair.currentRoundTripTime !== undefined) out.rtt_ms = pair.currentRoundTripTime * 1000;
        }
      }
    });
    if (!local && !pairOnly) {
      stats.forEach((s) => { if (s.type === 'local-candidate' && s.candidateType === 'relay' && !local) local = s; });
    }
    if (local) {
      if (local.relayProtocol) out.relay_protocol = local.relayProtocol;
      if (local.url) out.url = local.url;
    }
    stats.forEach((s) => {
      if (s.type === 'inbound-rtp' && s.kind === 'audio') {
        out.packets_received = s.packetsReceived || 0;
        out.packets_lost = s.packetsLost || 0;
        out.jitter_ms = (s.jitter || 0) * 1000;
      }
      if (s.type === 'outbound-rtp' && s.kind === 'audio') out.packets_sent = s.packetsSent || 0;
    });
    return out;
  }

  async function check(t) {
    const started = performance.now();
    const res = { target: t.id, outcome: 'timeout' };
    const errors = [];
    let pc;
    try {
      pc = new RTCPeerConnection({ iceServers: [iceServer(t)], iceTransportPolicy: t.kind === 'stun' ? 'all' : 'relay' });
    } catch (e) {
      res.outcome = 'error'; res.error_text = String(e.message || e); return res;
    }
    const want = t.kind === 'stun' ? 'srflx' : 'relay';
    const done = new Promise((resolve) => {
      const timer = setTimeout(resolve, CHECK_MS);
      pc.onicecandidate = (ev) => {
        if (!ev.candidate) { clearTimeout(timer); resolve(); return; }
        if (ev.candidate.type === want && res.outcome !== 'ok') {
          res.outcome = 'ok';
          res.candidate_ms = Math.round(performance.now() - started);
          if (ev.candidate.relayProtocol) res.relay_protocol = ev.candidate.relayProtocol;
          clearTimeout(timer); resolve();
        }
      };
      pc.onicecandidateerror = (ev) => { errors.push({ code: ev.errorCode || 0, text: ev.errorText || '' }); };
    });
    pc.createDataChannel('check');
    await pc.setLocalDescription(await pc.createOffer());
    await done;
    if (res.outcome === 'ok' && t.kind !== 'stun') {
      const st = await relayStats(pc, false);
      if (st.relay_protocol) res.relay_protocol = st.relay_protocol;
      if (st.url) res.url = st.url;
    } else if (res.outcome !== 'ok') {
      if (errors.length) {
        const e = errors.find((x) => x.code !== 701) || errors[0];
        res.outcome = 'error'; res.error_code = e.code; res.error_text = e.text;
      } else if (pc.iceGatheringState === 'complete') {
        res.outcome = 'no-candidate';
      }
    }
    pc.close();
    return res;
  }

  async function call(t, token, callMs) {
    const res = { target: t.id, connected: false, packets_received: 0, packets_lost: 0, packets_sent: 0 };
    const osc = audio.createOscillator();
    const dst = audio.createMediaStreamDestination();
    osc.frequency.value = 440;
    osc.connect(dst);
    osc.start();
    const pc = new RTCPeerConnection({ iceServers: [iceServer(t)], iceTransportPolicy: 'relay' });
    try {
      const track = dst.stream.getAudioTracks()[0];
      pc.addTrack(track, dst.stream);
      const started = performance.now();
      await pc.setLocalDescription(await pc.createOffer());
      await gathered(pc, CHECK_MS);
      const ans = await post('/api/call', { target: t.id, sdp: pc.localDescription.sdp }, token);
      res.id = ans.id;
      await pc.setRemoteDescription({ type: 'answer', sdp: ans.sdp });
      const ok = await new Promise((resolve) => {
        if (pc.connectionState === 'connected') { resolve(true); return; }
        const timer = setTimeout(() => resolve(false), CONNECT_MS);
        pc.addEventListener('connectionstatechange', () => {
          if (pc.connectionState === 'connected') { clearTimeout(timer); resolve(true); }
          if (pc.connectionState === 'failed') { clearTimeout(timer); resolve(false); }
        });
      });
      if (!ok) {
        res.error = 'ICE ' + pc.iceConnectionState;
        return res;
      }
      res.connected = true;
      res.connect_ms = Math.round(performance.now() - started);
      await sleep(callMs);
      const st = await relayStats(pc, true);
      Object.assign(res, st);
      delete res.url;
    } catch (e) {
      res.error = String(e.message || e);
    } finally {
      pc.close();
      osc.stop();
    }
    return res;
  }

  function cell(tr, text, cls) { tr.appendChild(el('td', text, cls)); }

  function render(rec) {
    const v = $('verdict');
    v.hidden = false;
    v.className = 'verdict ' + rec.verdict;
    $('verdict-title').textContent = { 'ready': 'Ready', 'degraded': 'Works, with problems', 'not-ready': 'Not ready' }[rec.verdict] || rec.verdict;
    $('verdict-text').textContent = rec.summary;
    const cb = $('checks').tBodies[0];
    cb.textContent = '';
    for (const c of rec.checks || []) {
      const tr = el('tr');
      cell(tr, c.label);
      cell(tr, c.outcome === 'ok' ? 'OK' + (c.relay_protocol ? ' (' + c.relay_protocol + ')' : '') : (c.error_code ? 'failed ' + c.error_code : c.outcome), c.outcome === 'ok' ? 'ok' : 'fail');
      cell(tr, c.candidate_ms ? c.candidate_ms + ' ms' : '');
      cell(tr, c.explanation || '');
      cb.appendChild(tr);
    }
    const kb = $('calls').tBodies[0];
    kb.textContent = '';
    for (const c of rec.calls || []) {
      const tr = el('tr');
      cell(tr, c.label);
      cell(tr, c.connected ? 'connected in ' + Math.round(c.connect_ms) + ' ms' : 'failed', c.connected && c.band !== 'poor' ? 'ok' : 'fail');
      cell(tr, c.connected ? Math.round(c.rtt_ms) + ' ms' : '');
      cell(tr, c.connected ? c.jitter_ms.toFixed(1) + ' ms' : '');
      cell(tr, c.connected ? c.loss_pct.toFixed(1) + ' %' : '');
      cell(tr, c.connected ? c.band + ' (MOS ' + c.mos.toFixed(2) + ')' + (c.explanation ? ': ' + c.explanation : '') : (c.explanation || ''));
      kb.appendChild(tr);
    }
    $('meta').textContent = 'Result ' + rec.id + ' from ' + rec.source + (rec.group ? ' (agents group ' + rec.group + ')' : ' (no agents group)') + ', ' + rec.at;
    $('details').hidden = false;
    const blob = new Blob([JSON.stringify(rec, null, 2)], { type: 'application/json' });
    $('download').href = URL.createObjectURL(blob);
    document.body.dataset.verdict = rec.verdict;
  }

  async function run() {
    $('start').disabled = true;
    document.body.dataset.verdict = '';
    try {
      audio = audio || new AudioContext();
      if (audio.state === 'suspended') await audio.resume();
      progress('Starting a test session…');
      const s = await post('/api/session', {});
      progress('Checking ' + s.targets.length + ' servers…');
      const checks = await Promise.all(s.targets.map(check));
      const okTurn = s.targets.filter((t, i) => t.kind !== 'stun' && !t.no_call && checks[i].outcome === 'ok');
      progress('Placing ' + okTurn.length + ' test calls…');
      const calls = await Promise.all(okTurn.map((t) => call(t, s.token, s.call_ms)));
      progress('Sending the results…');
      result = await post('/api/results', { checks: checks, calls: calls }, s.token);
      $('progress').hidden = true;
      render(result);
    } catch (e) {
      progress('The check could not finish: ' + String(e.message || e));
      document.body.dataset.verdict = 'error';
    } finally {
      $('start').disabled = false;
    }
  }

  $('start').addEventListener('click', run);
  $('copy').addEventListener('click', () => {
    if (result && navigator.clipboard) navigator.clipboard.writeText(JSON.stringify(result, null, 2));
  });
  const params = new URLSearchParams(location.search);
  if (params.get('result')) {
    // A stored result, as the agent saw it (the dashboard links here).
    fetch('/api/results/' + encodeURIComponent(params.get('result')), { credentials: 'same-origin' })
      .then((r) => (r.ok ? r.json() : Promise.reject(new Error('HTTP ' + r.status))))
      .then((rec) => { result = rec; render(rec); })
      .catch((e) => progress('The result could not be loaded: ' + String(e.message || e)));
  } else if (params.get('auto') === '1') {
    run();
  }
})();
