// hotrun live-reload client: served at /__hotrun/client.js, talks to /__hotrun/ws.
(() => {
  'use strict';
  if (window.__hotrun) return; // included twice: the first copy runs
  const hr = (window.__hotrun = { buildId: null, connected: false, messages: {} });

  const script = document.currentScript || document.querySelector('script[src*="/__hotrun/client.js"]');
  const nonce = (script && (script.nonce || script.getAttribute('nonce'))) || '';
  // The proxy tags each page with the id of the app that served it ("none": hotrun's
  // own 502 page); a hand-written tag has none.
  const pageId = (script && script.getAttribute('data-hotrun')) || '';
  const origin = new URL(script ? script.src : '/__hotrun/client.js', location.href);
  const wsUrl = (origin.protocol === 'https:' ? 'wss:' : 'ws:') + '//' + origin.host + '/__hotrun/ws';

  // ---- scroll position across reloads ----
  const SCROLL_KEY = 'hotrun:scroll';
  const here = () => location.pathname + location.search;
  let reloading = false;
  // `path`: the file that changed, if any. Without the proxy (a hand-written tag),
  // nothing stops the browser from reusing what it cached: what the reload will load
  // is fetched anew first.
  async function reload(path) {
    if (reloading) return;
    reloading = true;
    setTimeout(() => { reloading = false; }, 2000); // in case a beforeunload prompt cancels it
    try {
      sessionStorage.setItem(SCROLL_KEY, JSON.stringify({ path: here(), x: scrollX, y: scrollY, at: Date.now() }));
    } catch (_) { /* storage disabled */ }
    if (!pageId) await refetch(path);
    location.reload();
  }
  const sameOrigin = (url) => { try { return new URL(url, location.href).origin === location.origin; } catch (_) { return false; } };
  // The page itself and what it loaded that matches `path` (every same-origin script
  // and stylesheet when no path is known): into the HTTP cache anew, at most ~1.5 s.
  function refetch(path) {
    const urls = new Set([location.href.split('#')[0]]);
    const loaded = performance.getEntriesByType('resource').map((e) => e.name)
      .concat(Array.from(document.querySelectorAll('script[src],link[href],img[src]'), (e) => e.src || e.href));
    // A swapped stylesheet has a cache-busting query; the reload loads the plain URL.
    const plain = (u) => { const x = new URL(u, location.href); x.searchParams.delete('hotrun'); return x.href; };
    const candidates = loaded.filter((u) => u && sameOrigin(u) && !u.includes('/__hotrun/')).map(plain);
    if (path) {
      let best = 0;
      const scored = candidates.map((u) => ({ u, n: matchScore(u, path) }));
      for (const s of scored) best = Math.max(best, s.n);
      if (best) for (const s of scored) if (s.n === best) urls.add(s.u);
    } else {
      for (const e of document.querySelectorAll('script[src],link[rel~="stylesheet"][href]')) {
        const u = e.src || e.href;
        if (u && sameOrigin(u)) urls.add(plain(u));
      }
    }
    const all = Array.from(urls).slice(0, 64).map((u) =>
      fetch(u, { cache: 'reload', credentials: 'same-origin' }).then((r) => r.arrayBuffer()).catch(() => {}));
    return Promise.race([Promise.all(all), new Promise((done) => setTimeout(done, 1500))]);
  }

  // A page that carries an older build id reloads once; if the reload brings the same
  // stale page again (something between serves an old copy), it says so, never loops.
  const STALE_KEY = 'hotrun:stale';
  const RETRY_KEY = 'hotrun:retry';
  function staleReload(buildId) {
    if (pageId === 'none') {
      // hotrun's own 502 page, and an app is up: load it, again with backoff while the
      // app does not answer yet.
      let n = 0;
      try {
        n = Number(sessionStorage.getItem(RETRY_KEY)) || 0;
        sessionStorage.setItem(RETRY_KEY, String(n + 1));
      } catch (_) { /* storage disabled */ }
      setTimeout(reload, Math.min(500 * 2 ** n, 5000));
      return;
    }
    let last = null, storage = true;
    try { last = JSON.parse(sessionStorage.getItem(STALE_KEY)); } catch (_) { storage = false; }
    const nav = performance.getEntriesByType('navigation')[0];
    const again = storage
      ? last && last.id === buildId && last.page === pageId && last.path === here()
      : !!nav && nav.type === 'reload'; // no storage: a page that came from a reload
    if (again) {
      console.warn('hotrun: this page is still an old copy after a reload (a cache in between?); not reloading again');
      showBadge('hotrun: stale page \u2014 reload by hand');
      return;
    }
    try {
      sessionStorage.setItem(STALE_KEY, JSON.stringify({ id: buildId, page: pageId, path: here() }));
    } catch (_) { /* storage disabled */ }
    reload();
  }
  function restoreScroll() {
    let saved;
    try {
      saved = JSON.parse(sessionStorage.getItem(SCROLL_KEY));
      sessionStorage.removeItem(SCROLL_KEY);
    } catch (_) { return; }
    if (!saved || saved.path !== here() || !(Date.now() - saved.at <= 5000)) return;
    const to = () => scrollTo(saved.x, saved.y);
    const go = () => { to(); requestAnimationFrame(to); }; // again in a frame: layout may settle late
    if (document.readyState === 'complete') go();
    else addEventListener('load', go, { once: true });
  }

  // ---- shadow-root hosts (overlay, badge) ----
  function el(tag, cls, text) {
    const e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text != null) e.textContent = text;
    return e;
  }
  function styleEl(css) {
    const s = el('style', null, css);
    if (nonce) { s.setAttribute('nonce', nonce); s.nonce = nonce; }
    return s;
  }
  const mount = (host) => host.isConnected || document.documentElement.appendChild(host);

  // ---- ANSI SGR -> styled segments ----
  const BASE = ['#5c6370', '#ef6b73', '#98c379', '#e5c07b', '#61afef', '#c678dd', '#56b6c2', '#d7dae0'];
  const BRIGHT = ['#7f848e', '#ff7b85', '#b5e890', '#f5d58a', '#82c4ff', '#e09af0', '#7fdde6', '#ffffff'];
  const rgb = (r, g, b) => `rgb(${r | 0},${g | 0},${b | 0})`;
  function color256(n) {
    if (!(n >= 0 && n <= 255)) return null;
    if (n < 8) return BASE[n];
    if (n < 16) return BRIGHT[n - 8];
    if (n < 232) {
      n -= 16;
      const v = (c) => (c ? c * 40 + 55 : 0);
      return rgb(v(Math.floor(n / 36)), v(Math.floor(n / 6) % 6), v(n % 6));
    }
    const g = 8 + (n - 232) * 10;
    return rgb(g, g, g);
  }
  function sgr(prev, params) {
    let st = Object.assign({}, prev);
    const p = params.split(';').map((x) => parseInt(x, 10) || 0);
    for (let i = 0; i < p.length; i++) {
      const c = p[i];
      if (c === 0) st = {};
      else if (c === 1) st.bold = true;
      else if (c === 2) st.dim = true;
      else if (c === 3) st.italic = true;
      else if (c === 4) st.underline = true;
      else if (c === 22) st.bold = st.dim = false;
      else if (c === 23) st.italic = false;
      else if (c === 24) st.underline = false;
      else if (c >= 30 && c <= 37) st.fg = BASE[c - 30];
      else if (c >= 90 && c <= 97) st.fg = BRIGHT[c - 90];
      else if (c >= 40 && c <= 47) st.bg = BASE[c - 40];
      else if (c >= 100 && c <= 107) st.bg = BRIGHT[c - 100];
      else if (c === 39) st.fg = null;
      else if (c === 49) st.bg = null;
      else if (c === 38 || c === 48) {
        let col = null;
        if (p[i + 1] === 5) { col = color256(p[i + 2]); i += 2; }
        else if (p[i + 1] === 2) { col = rgb(p[i + 2], p[i + 3], p[i + 4]); i += 4; }
        if (col) st[c === 38 ? 'fg' : 'bg'] = col;
      }
    }
    return st;
  }
  // CSI sequences (SGR applied, others dropped), OSC strings, two-byte escapes, a lone ESC.
  const ESC_RE = /\x1b(?:\[([0-?]*)[ -/]*([@-~])|\][^\x07\x1b]*(?:\x07|\x1b\\)?|[@-_])?/g;
  function ansiSegments(text) {
    const out = [];
    let st = {}, last = 0, m;
    const push = (s) => { if (s) out.push(Object.assign({ text: s }, st)); };
    ESC_RE.lastIndex = 0;
    while ((m = ESC_RE.exec(text))) {
      push(text.slice(last, m.index));
      last = ESC_RE.lastIndex;
      if (m[2] === 'm') st = sgr(st, m[1]);
    }
    push(text.slice(last));
    return out;
  }
  function renderAnsi(parent, text) {
    for (const s of ansiSegments(text)) {
      if (!s.fg && !s.bg && !s.bold && !s.dim && !s.italic && !s.underline) {
        parent.appendChild(document.createTextNode(s.text));
        continue;
      }
      const span = parent.appendChild(el('span', null, s.text));
      Object.assign(span.style, { // CSSOM, so a style-src CSP does not object
        color: s.fg || '', backgroundColor: s.bg || '', fontWeight: s.bold ? 'bold' : '',
        opacity: s.dim ? '0.7' : '', fontStyle: s.italic ? 'italic' : '', textDecoration: s.underline ? 'underline' : '',
      });
    }
  }

  // ---- error / exit overlay ----
  const OVERLAY_CSS = `:host{all:initial}
.backdrop{position:fixed;top:0;right:0;bottom:0;left:0;z-index:2147483647;overflow:auto;box-sizing:border-box;padding:5vh 4vw;background:rgba(8,10,14,.86);color:#d7dae0;font:13px/1.45 ui-monospace,SFMono-Regular,Menlo,Consolas,monospace}
.panel{max-width:1100px;margin:0 auto;padding:16px 20px;background:#181a1f;border:1px solid #3a3f4b;border-top:3px solid #ef6b73;border-radius:6px;box-shadow:0 10px 40px rgba(0,0,0,.5)}
.exited .panel{border-top-color:#e5c07b}
.head{display:flex;align-items:center;justify-content:space-between;gap:12px}
.title{margin:0;font:600 18px/1.3 system-ui,sans-serif;color:#ff7b85}
.exited .title{color:#f5d58a}
.close{cursor:pointer;border:1px solid #3a3f4b;border-radius:4px;background:#23262d;color:#d7dae0;font:14px system-ui,sans-serif;padding:2px 10px}
.message{margin:12px 0 0;font:14px/1.4 system-ui,sans-serif}
.location{display:block;margin:14px 0 4px;color:#82c4ff;font-weight:600}
pre{margin:8px 0 0;padding:10px 12px;overflow:auto;background:#0f1115;border-radius:4px;white-space:pre;font:inherit}
.hint{margin:14px 0 0;color:#7f848e;font:12px system-ui,sans-serif}`;
  const MAX_DIAGNOSTICS = 50;
  let overlay = null; // { host, root }

  function showOverlay(kind, title, fill) {
    if (!overlay) {
      const host = document.createElement('hotrun-overlay');
      overlay = { host, root: host.attachShadow({ mode: 'open' }) };
    }
    overlay.root.replaceChildren();
    const backdrop = el('div', 'backdrop ' + kind);
    const panel = el('div', 'panel');
    panel.setAttribute('role', 'dialog');
    panel.setAttribute('aria-label', title);
    const head = el('div', 'head');
    const close = el('button', 'close', 'Close');
    close.addEventListener('click', hideOverlay);
    head.append(el('h1', 'title', title), close);
    panel.appendChild(head);
    fill(panel);
    panel.appendChild(el('p', 'hint', 'Press Esc to dismiss. hotrun keeps watching.'));
    backdrop.appendChild(panel);
    backdrop.addEventListener('click', (e) => { if (e.target === backdrop) hideOverlay(); });
    overlay.root.append(styleEl(OVERLAY_CSS), backdrop);
    mount(overlay.host);
  }
  function hideOverlay() {
    if (overlay) overlay.host.remove(), (overlay = null);
  }
  function showErrors(diagnostics, title) {
    const list = Array.isArray(diagnostics) ? diagnostics : [];
    showOverlay('failed', typeof title === 'string' && title ? title : 'Build failed', (panel) => {
      for (const d of list.slice(0, MAX_DIAGNOSTICS)) {
        const block = el('div', 'diagnostic');
        block.setAttribute('data-level', String(d.level || ''));
        if (d.file) {
          let where = String(d.file);
          if (d.line != null) where += ':' + d.line + (d.column != null ? ':' + d.column : '');
          block.appendChild(el('div', 'location', where));
        }
        renderAnsi(block.appendChild(el('pre', 'rendered')), String(d.rendered || d.message || ''));
        panel.appendChild(block);
      }
      if (list.length > MAX_DIAGNOSTICS) panel.appendChild(el('p', 'message', `\u2026and ${list.length - MAX_DIAGNOSTICS} more`));
      if (!list.length) panel.appendChild(el('p', 'message', 'The build failed; see the hotrun terminal.'));
    });
  }
  function showExited(msg) {
    let text = 'The app exited.';
    if (msg.signal != null) text = `The app was killed by signal ${msg.signal}.`;
    else if (msg.code != null) text = `The app exited with code ${msg.code}.`;
    const output = Array.isArray(msg.output) ? msg.output.map(String) : [];
    // A new version that died on start: the old one still serves this page.
    if (msg.rolled_back) text = text.replace('The app', 'The new version of the app') + ' The previous version keeps running.';
    showOverlay('exited', msg.rolled_back ? 'The new version did not start' : 'The app exited', (panel) => {
      panel.appendChild(el('p', 'message', text));
      // Its last words (a panic, a missing variable), as text with their colours.
      if (output.length) renderAnsi(panel.appendChild(el('pre', 'output')), output.join('\n'));
    });
  }
  document.addEventListener('keydown', (e) => { if (overlay && e.key === 'Escape') hideOverlay(); });

  // ---- reconnecting badge ----
  const BADGE_CSS = `:host{all:initial}
.badge{position:fixed;right:12px;bottom:12px;z-index:2147483647;pointer-events:none;padding:4px 10px;background:#181a1f;color:#e5c07b;border:1px solid #3a3f4b;border-radius:4px;font:12px/1.4 system-ui,sans-serif;box-shadow:0 2px 8px rgba(0,0,0,.35)}`;
  let badge = null;
  function showBadge(text) {
    text = text || 'hotrun: reconnecting\u2026';
    if (badge) {
      badge.shadowRoot.querySelector('.badge').textContent = text;
      return mount(badge);
    }
    badge = document.createElement('hotrun-badge');
    badge.attachShadow({ mode: 'open' }).append(styleEl(BADGE_CSS), el('div', 'badge', text));
    mount(badge);
  }
  function hideBadge() {
    if (badge) badge.remove(), (badge = null);
  }

  // ---- stylesheet swapping ----
  function segments(p) {
    return String(p).replace(/\\/g, '/').split('/').filter(Boolean).map((s) => {
      try { return decodeURIComponent(s); } catch (_) { return s; }
    });
  }
  // How many trailing path segments url and path share (0: not even the file name).
  function matchScore(url, path) {
    let a;
    try { a = segments(new URL(url, location.href).pathname); } catch (_) { return 0; }
    const b = segments(path);
    let n = 0;
    while (n < a.length && n < b.length && a[a.length - 1 - n] === b[b.length - 1 - n]) n++;
    return n;
  }
  function bust(url) {
    const u = new URL(url, document.baseURI);
    // Without the proxy, the plain URL is fetched anew too: the next reload loads it.
    if (!pageId && sameOrigin(u.href)) {
      const plain = new URL(u.href);
      plain.searchParams.delete('hotrun');
      fetch(plain.href, { cache: 'reload', credentials: 'same-origin' }).catch(() => {});
    }
    u.searchParams.set('hotrun', String(Date.now()));
    return u.href;
  }
  const isStylesheetLink = (l) => /(^|\s)stylesheet(\s|$)/i.test(l.rel) && l.href && !l.__hotrunOld;
  const styleLinks = () => Array.from(document.querySelectorAll('link[rel]')).filter(isStylesheetLink);

  // Add a busted clone right after the link; drop the old one once the clone has loaded.
  function refreshLink(link) {
    if (link.__hotrunOld) return;
    link.__hotrunOld = true;
    const clone = link.cloneNode(false);
    clone.href = bust(link.href);
    const done = () => { clearTimeout(timer); link.remove(); };
    clone.addEventListener('load', done, { once: true });
    clone.addEventListener('error', done, { once: true });
    const timer = setTimeout(done, 10000); // disabled links never load
    link.after(clone);
  }
  const importUrl = (rule, sheet) =>
    (rule.styleSheet && rule.styleSheet.href) || new URL(rule.href, sheet.href || document.baseURI).href;
  // Swap an @import rule for one with a busted URL, preloading it first so nothing flashes.
  function refreshImport(rule, sheet) {
    const href = bust(importUrl(rule, sheet));
    const media = rule.media && rule.media.mediaText ? ' ' + rule.media.mediaText : '';
    const pre = Object.assign(document.createElement('link'), { rel: 'preload', as: 'style', nonce, href });
    const swap = () => {
      clearTimeout(timer);
      pre.remove();
      const index = Array.prototype.indexOf.call(sheet.cssRules, rule);
      if (index < 0) return; // already replaced
      try {
        sheet.insertRule(`@import url(${JSON.stringify(href)})${media};`, index);
        sheet.deleteRule(index + 1);
      } catch (_) { /* sheet gone or locked */ }
    };
    pre.addEventListener('load', swap, { once: true });
    pre.addEventListener('error', swap, { once: true });
    const timer = setTimeout(swap, 3000);
    (document.head || document.documentElement).appendChild(pre);
  }
  // @import rules reachable from the page's stylesheets (same-origin ones only).
  function collectImports(sheet, out, depth) {
    let rules;
    try { rules = sheet.cssRules; } catch (_) { return; } // cross-origin: SecurityError
    if (!rules || depth > 8) return;
    for (const rule of Array.from(rules)) {
      if (typeof CSSImportRule === 'undefined' || !(rule instanceof CSSImportRule)) continue;
      out.push({ url: importUrl(rule, sheet), rule, sheet });
      if (rule.styleSheet) collectImports(rule.styleSheet, out, depth + 1);
    }
  }
  function refreshCss(path) {
    const found = styleLinks().map((link) => ({ url: link.href, link }));
    for (const sheet of Array.from(document.styleSheets)) {
      if (!sheet.ownerNode || !sheet.ownerNode.__hotrunOld) collectImports(sheet, found, 0);
    }
    let best = 0;
    for (const f of found) best = Math.max(best, (f.score = matchScore(f.url, path)));
    if (!best) return styleLinks().forEach(refreshLink);
    for (const f of found) {
      if (f.score !== best) continue;
      if (f.link) refreshLink(f.link);
      else refreshImport(f.rule, f.sheet);
    }
  }

  // ---- messages ----
  function applyState(msg) {
    if (msg.state === 'failed') showErrors(msg.diagnostics, msg.title);
    else if (msg.state === 'exited') showExited(msg);
    else if (msg.state === 'running') hideOverlay();
  }
  let greeted = false;
  function handle(msg) {
    hr.messages[msg.type] = (hr.messages[msg.type] || 0) + 1;
    switch (msg.type) {
      case 'hello':
        hideBadge();
        backoff = 250;
        if (!greeted) {
          greeted = true;
          hr.buildId = msg.build_id;
          if (pageId && pageId !== msg.build_id && msg.state === 'running') {
            // A newer app went live before this page connected (or this is the 502
            // page and an app is up now): show what serves now.
            staleReload(msg.build_id);
          } else {
            if (pageId === msg.build_id) {
              try {
                sessionStorage.removeItem(STALE_KEY);
                sessionStorage.removeItem(RETRY_KEY);
              } catch (_) { /* storage disabled */ }
            }
            applyState(msg);
          }
        } else if (msg.build_id !== hr.buildId && msg.state === 'running') {
          reload(); // hotrun restarted or rebuilt while we were away
        } else {
          applyState(msg); // same app, or one still building, failing or exited
        }
        break;
      case 'compiled': // a new app is live
        hr.buildId = msg.build_id;
        hideOverlay();
        reload();
        break;
      case 'ok': hideOverlay(); break; // the binary did not change
      case 'error': showErrors(msg.diagnostics, msg.title); break;
      case 'exited': showExited(msg); break;
      case 'reload': reload(msg.path); break;
      case 'css': refreshCss(msg.path || ''); break; // no path: refresh every stylesheet
      default: break; // 'building' and unknown types
    }
  }

  // ---- connection with backoff ----
  let ws = null, backoff = 250, timer = 0, paused = false;
  function connect() {
    timer = 0;
    let sock;
    try { sock = new WebSocket(wsUrl); } catch (_) { return lost(null); }
    ws = sock;
    sock.addEventListener('open', () => {
      hr.connected = true;
      console.debug('hotrun: connected to ' + wsUrl);
    });
    sock.addEventListener('message', (e) => {
      let msg;
      try { msg = JSON.parse(e.data); } catch (_) { return; }
      if (msg && typeof msg.type === 'string') handle(msg);
    });
    sock.addEventListener('close', () => lost(sock));
  }
  function lost(sock) {
    if (sock && sock !== ws) return;
    ws = null;
    hr.connected = false;
    if (!reloading) showBadge(), retry();
  }
  function retry() {
    if (timer) return;
    if (document.hidden) { paused = true; return; } // wait for the tab to be visible
    timer = setTimeout(() => {
      if (document.hidden) { timer = 0; paused = true; } else connect();
    }, backoff);
    backoff = Math.min(backoff * 2, 5000);
  }
  document.addEventListener('visibilitychange', () => {
    if (!document.hidden && paused && !ws) { paused = false; connect(); }
  });

  restoreScroll();
  connect();
})();
