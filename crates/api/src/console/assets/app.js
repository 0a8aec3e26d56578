// The console's entry point: who is signed in, the hash router, and the live event feed that
// every view hears.

import { gql, plainWords, liveEvents } from './gql.js';
import { h, session, can, desk, article, write, search, dashboard } from './views.js';

const main = document.getElementById('main');
let view = {};
let generation = 0;

function parse(hash) {
  const [path, query] = (hash.replace(/^#/, '') || '/desk').split('?');
  const params = Object.fromEntries(new URLSearchParams(query || ''));
  const parts = path.split('/').filter(Boolean);
  switch (parts[0]) {
    case 'article': return [article, { ...params, id: parts[1] }, 'Article'];
    case 'edit': return [write, { ...params, id: parts[1] }, 'Revise'];
    case 'write': return [write, params, 'New article'];
    case 'search': return [search, params, 'Search'];
    case 'dashboard': return [dashboard, params, 'Dashboard'];
    default: return [desk, params, 'Desk'];
  }
}

async function route() {
  const mine = ++generation;
  const [render, params, title] = parse(window.location.hash);
  document.title = `${title} · Galley`;
  for (const a of document.querySelectorAll('nav a')) {
    if (a.getAttribute('href') === `#/${window.location.hash.replace(/^#\/?/, '').split(/[/?]/)[0] || 'desk'}`) a.setAttribute('aria-current', 'page');
    else a.removeAttribute('aria-current');
  }
  // Each view renders into a container of its own, shown only if no later navigation
  // happened meanwhile: a slow view can never overwrite the one the person went on to.
  const root = h('div', { class: 'view' });
  let next = {};
  try {
    next = (await render(root, params)) || {};
  } catch (e) {
    root.replaceChildren(h('h1', {}, title), h('p', { class: 'error', role: 'alert' }, plainWords(e)));
  }
  if (mine !== generation) return;
  view = next;
  main.replaceChildren(root);
  // After a navigation, focus moves to the new view (screen readers start there); on the
  // first load it stays at the top, so the first Tab reaches the skip link.
  if (mine > 1) main.focus({ preventScroll: true });
}

async function start() {
  try {
    session.me = (await gql('{ me { id name roles } }')).me;
  } catch (e) {
    main.replaceChildren(h('p', { class: 'error', role: 'alert' }, plainWords(e)));
    return;
  }
  const who = document.getElementById('who');
  who.textContent = `${session.me.name} (${session.me.roles.map((r) => r.toLowerCase()).join(', ')})`;
  if (!can('EDITOR')) {
    const item = document.getElementById('nav-write');
    if (item) item.parentElement.remove();
  }
  const status = h('span', { class: 'feed', id: 'feed-state' }, 'connecting…');
  document.querySelector('.who').prepend(status);
  liveEvents((event) => {
    if (view.onEvent) view.onEvent(event);
  }, (state) => {
    status.textContent = state === 'live' ? 'live' : 'offline';
    status.dataset.state = state;
  });
  window.addEventListener('hashchange', route);
  await route();
}

start();
