// The console's views. Each renders into <main> from the API's answers and returns an
// optional `onEvent(event)` that the router calls for every live event.

import { gql, plainWords, ApiError } from './gql.js';
import { barChart, columnChart } from './charts.js';

/** Creates an element: h('a', {href: '#/'}, 'text', child…). Text is never parsed as HTML. */
export function h(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === false || v === null || v === undefined) continue;
    if (k.startsWith('on')) node.addEventListener(k.slice(2), v);
    else if (k === 'class') node.className = v;
    else if (k === 'for') node.htmlFor = v;
    // An input's value as its attribute, so that defaultValue tells what the person typed.
    else if (k === 'value' && tag === 'input') node.setAttribute('value', String(v));
    else if (k === 'value') node.value = v;
    else node.setAttribute(k, v === true ? '' : String(v));
  }
  for (const c of children.flat()) {
    if (c === null || c === undefined || c === false) continue;
    node.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return node;
}

export const session = { me: null };

/** Whether the signed-in person holds `role` (ADMIN holds every role). */
export function can(role) {
  const roles = (session.me && session.me.roles) || [];
  return roles.includes(role) || roles.includes('ADMIN');
}

const STATUS_WORDS = {
  DRAFT: 'Draft',
  IN_REVIEW: 'In review',
  CHANGES_REQUESTED: 'Changes requested',
  APPROVED: 'Approved',
  SCHEDULED: 'Scheduled',
  PUBLISHED: 'Published',
  UNPUBLISHED: 'Unpublished',
  ARCHIVED: 'Archived',
};

function badge(status) {
  return h('span', { class: `badge status-${status.toLowerCase()}` }, STATUS_WORDS[status] || status);
}

function when(iso) {
  if (!iso) return '';
  const d = new Date(iso);
  return d.toISOString().replace('T', ' ').slice(0, 16) + ' UTC';
}

/** Announces a message in the page's live region (read out by screen readers). */
export function announce(text) {
  const live = document.getElementById('live');
  if (live) live.textContent = text;
}

function alertBox(text) {
  return h('p', { class: 'error', role: 'alert' }, text);
}

let uniqueId = 0;
function field(label, input, hint) {
  const id = input.id || `f${++uniqueId}`;
  input.id = id;
  const hintNode = hint ? h('span', { class: 'hint', id: `${id}-hint` }, hint) : null;
  if (hintNode) input.setAttribute('aria-describedby', hintNode.id);
  return h('div', { class: 'field' }, h('label', { for: id }, label), input, hintNode);
}

function section(title, ...children) {
  const id = `s${++uniqueId}`;
  return h('section', { class: 'panel', 'aria-labelledby': id }, h('h2', { id }, title), ...children);
}

function articleLink(a) {
  return h('li', { class: 'row' },
    h('a', { href: `#/article/${a.id}` }, a.headline || '(no headline)'),
    ' ', badge(a.status),
    a.embargoUntil && new Date(a.embargoUntil) > new Date() ? h('span', { class: 'badge embargo' }, `Embargo until ${when(a.embargoUntil)}`) : null,
    a.scheduledFor ? h('span', { class: 'meta' }, ` due ${when(a.scheduledFor)}`) : null);
}

function list(items, empty, render = articleLink) {
  if (!items.length) return h('p', { class: 'empty' }, empty);
  return h('ul', { class: 'rows' }, items.map(render));
}

function titled(title, count, body) {
  const id = `s${++uniqueId}`;
  return h('section', { class: 'panel', 'aria-labelledby': id },
    h('h2', { id }, title, ' ', h('span', { class: 'count', 'aria-label': `${count} items` }, String(count))), body);
}

const ROW = 'fragment Row on Article { id headline status version updatedAt embargoUntil scheduledFor }';

// ---------------------------------------------------------------- desk

export async function desk(main) {
  const render = async () => {
    const data = await gql(`query Desk($me: ID!, $reviewer: Boolean!) {
        mine: articles(filter: {author: $me, status: [DRAFT, CHANGES_REQUESTED, IN_REVIEW]}, first: 50) { nodes { ...Row } }
        queue: reviewQueue(first: 50) @include(if: $reviewer) { nodes { ...Row } }
        waiting: articles(filter: {status: [APPROVED, SCHEDULED]}, first: 50) { nodes { ...Row } }
        dashboard { overdue { articleId headline scheduledFor blockedReason } }
      } ${ROW}`, { me: session.me.id, reviewer: can('REVIEWER') });
    const now = new Date();
    const waiting = data.waiting.nodes;
    const approved = waiting.filter((a) => a.status === 'APPROVED');
    const scheduled = waiting.filter((a) => a.status === 'SCHEDULED');
    const embargoed = waiting.filter((a) => a.embargoUntil && new Date(a.embargoUntil) > now);
    const overdue = data.dashboard.overdue;
    const panels = [
      h('h1', {}, 'Desk'),
      titled('My drafts', data.mine.nodes.length, list(data.mine.nodes, 'No drafts of yours are open.')),
    ];
    if (data.queue) {
      panels.push(titled('Waiting for my review', data.queue.nodes.length, list(data.queue.nodes, 'Nothing waits for your review.')));
    }
    panels.push(h('div', { class: 'grid' },
      titled('Approved', approved.length, list(approved, 'Nothing approved waits.')),
      titled('Scheduled', scheduled.length, list(scheduled, 'Nothing is scheduled.')),
      titled('Overdue', overdue.length, list(overdue, 'Nothing is overdue.', (o) => h('li', { class: 'row' },
        h('a', { href: `#/article/${o.articleId}` }, o.headline), h('span', { class: 'meta' }, ` due ${when(o.scheduledFor)}`),
        o.blockedReason ? h('span', { class: 'meta' }, ` — ${o.blockedReason}`) : null))),
      titled('Embargoed', embargoed.length, list(embargoed, 'Nothing waiting is under embargo.'))));
    main.replaceChildren(...panels);
  };
  await render();
  let pending = null;
  return {
    onEvent() {
      clearTimeout(pending);
      pending = setTimeout(() => render().then(() => announce('The desk was updated.')).catch(() => {}), 150);
    },
  };
}

// ---------------------------------------------------------------- diffs

function renderDiff(diff) {
  const parts = [];
  if (diff.changedFields.length) {
    parts.push(h('table', { class: 'fields' },
      h('caption', {}, `Fields changed from revision ${diff.from} to ${diff.to}`),
      h('thead', {}, h('tr', {}, h('th', { scope: 'col' }, 'Field'), h('th', { scope: 'col' }, 'Before'), h('th', { scope: 'col' }, 'After'))),
      h('tbody', {}, diff.changedFields.map((f) => h('tr', {}, h('th', { scope: 'row' }, f.field), h('td', {}, f.before ?? ''), h('td', {}, f.after ?? ''))))));
  }
  if (diff.tagsAdded.length || diff.tagsRemoved.length) {
    parts.push(h('p', { class: 'tags-diff' },
      diff.tagsAdded.length ? h('span', {}, 'Tags added: ', h('ins', {}, diff.tagsAdded.join(', ')), ' ') : null,
      diff.tagsRemoved.length ? h('span', {}, 'Tags removed: ', h('del', {}, diff.tagsRemoved.join(', '))) : null));
  }
  const b = diff.body;
  if (b.changed) {
    parts.push(h('p', { class: 'meta' }, `Body: ${b.wordsAdded} word(s) added, ${b.wordsRemoved} removed.`));
    parts.push(h('div', { class: 'diff-body' }, b.hunks.map((hunk) => h('p', { class: 'hunk' },
      hunk.segments.map((s) => (s.kind === 'INSERT' ? h('ins', {}, s.text) : s.kind === 'DELETE' ? h('del', {}, s.text) : s.text))))));
  } else {
    parts.push(h('p', { class: 'meta' }, 'The body did not change.'));
  }
  return h('div', { class: 'diff', 'data-from': diff.from, 'data-to': diff.to }, parts);
}

const DIFF = `from to changedFields { field before after } tagsAdded tagsRemoved
  body { changed wordsAdded wordsRemoved hunks { segments { kind text } } }`;

async function fetchDiff(id, from, to) {
  const data = await gql(`query($id: ID!, $from: Int!, $to: Int!) { article(id: $id) { diff(from: $from, to: $to) { ${DIFF} } } }`, { id, from, to });
  return data.article.diff;
}

// ---------------------------------------------------------------- the article

const ARTICLE = `id version revisionNumber status liveRevision approvedRevision hasUnpublishedChanges
  headline standfirst body bodyHtml slug category tags byline language embargoUntil scheduledFor
  scheduleBlockedReason updatedAt authors { id name } reviewers { id name }`;

function mutationButton(label, run, attrs = {}) {
  return h('button', { type: 'button', ...attrs, onclick: run }, label);
}

export async function article(main, { id }) {
  let current = null;
  const message = h('div', { class: 'messages', 'aria-live': 'polite' });
  const run = async (what, query, vars) => {
    message.replaceChildren();
    try {
      await gql(query, { id, v: current.version, ...vars });
      await render();
      announce(`${what}: done.`);
      message.replaceChildren(h('p', { class: 'ok', role: 'status' }, `${what}: done.`));
    } catch (e) {
      if (e instanceof ApiError && e.code === 'CONFLICT') await render();
      message.replaceChildren(alertBox(plainWords(e)));
    }
  };
  const m = (name, args = '') => `mutation($id: ID!, $v: Int! ${args ? ', ' + args.split(',').map((a) => a.trim()).filter(Boolean).map((a) => `$${a}`).join(', ') : ''}) {
      ${name}(articleId: $id, expectedVersion: $v${args ? ', ' + args.split(',').map((a) => a.trim().split(':')[0]).filter(Boolean).map((a) => `${a}: $${a}`).join(', ') : ''}) { article { id version status } } }`;

  const actions = (a) => {
    const out = [];
    const inline = (label, input, button) => h('form', { class: 'inline', onsubmit: (e) => { e.preventDefault(); button(); } }, field(label, input), h('button', { type: 'submit' }, label));
    if (can('EDITOR')) {
      if (a.status !== 'ARCHIVED') out.push(h('a', { class: 'button', href: `#/edit/${a.id}` }, 'Revise'));
      if (a.status === 'DRAFT' || a.status === 'CHANGES_REQUESTED') out.push(mutationButton('Submit for review', () => run('Submitted for review', m('submitForReview'))));
      if (a.status === 'IN_REVIEW') out.push(mutationButton('Withdraw submission', () => run('Withdrawn', m('withdrawSubmission'))));
    }
    if (can('REVIEWER') && a.status === 'IN_REVIEW') {
      out.push(mutationButton(`Approve revision ${a.revisionNumber}`, () => run('Approved', m('approveRevision', 'revision: Int!'), { revision: a.revisionNumber }), { class: 'primary' }));
      const reason = h('textarea', { name: 'reason', required: true, rows: 2 });
      out.push(inline('Request changes', reason, () => run('Changes requested', m('requestChanges', 'reason: String!'), { reason: reason.value })));
    }
    if (can('PUBLISHER')) {
      if (a.status === 'APPROVED') {
        if (a.liveRevision == null) {
          out.push(mutationButton('Publish now', () => run('Published', m('publishArticle')), { class: 'primary' }));
        } else {
          const note = h('textarea', { name: 'correction', required: true, rows: 2 });
          out.push(inline('Publish correction', note, () => run('Correction published', m('publishArticle', 'correction: String!'), { correction: note.value })));
          out.push(mutationButton('Publish update without a note', () => run('Published', m('publishArticle'))));
        }
        const at = h('input', { type: 'datetime-local', name: 'publishAt', required: true });
        out.push(inline('Schedule', at, () => run('Scheduled', m('publishArticle', 'publishAt: DateTime!'), { publishAt: new Date(at.value).toISOString() })));
      }
      if (a.status === 'SCHEDULED') out.push(mutationButton('Cancel schedule', () => run('Schedule cancelled', m('cancelSchedule'))));
      if (a.status === 'PUBLISHED') {
        const reason = h('textarea', { name: 'reason', required: true, rows: 2 });
        out.push(inline('Unpublish', reason, () => run('Unpublished', m('unpublishArticle', 'reason: String!'), { reason: reason.value })));
      }
      if (['DRAFT', 'CHANGES_REQUESTED', 'UNPUBLISHED'].includes(a.status)) out.push(mutationButton('Archive', () => run('Archived', m('archiveArticle'))));
      if (a.status === 'ARCHIVED') out.push(mutationButton('Restore from the archive', () => run('Restored', m('restoreArticle'))));
    }
    if ((can('EDITOR') || can('PUBLISHER')) && a.status !== 'ARCHIVED') {
      const until = h('input', { type: 'datetime-local', name: 'until', required: true });
      out.push(inline('Set embargo', until, () => run('Embargo set', m('setEmbargo', 'until: DateTime!'), { until: new Date(until.value).toISOString() })));
    }
    if (can('ADMIN') && a.embargoUntil) {
      const reason = h('input', { name: 'reason', required: true });
      out.push(inline('Lift embargo', reason, () => run('Embargo lifted', m('liftEmbargo', 'reason: String!'), { reason: reason.value })));
    }
    if (can('EDITOR') && a.revisionNumber > 1) {
      const pick = h('select', { name: 'revision' }, a.revisions.filter((r) => r.number !== a.revisionNumber).map((r) => h('option', { value: r.number }, `Revision ${r.number}`)));
      out.push(inline('Restore revision', pick, () => run('Revision restored', m('restoreRevision', 'revision: Int!'), { revision: Number(pick.value) })));
    }
    return out.length ? h('div', { class: 'actions' }, out) : h('p', { class: 'empty' }, 'Your roles allow no action on this article now; you can read it and its history.');
  };

  const review = async (a) => {
    if (a.status !== 'IN_REVIEW' && !a.comments.length) return null;
    const base = a.approvedRevision && a.approvedRevision !== a.revisionNumber ? a.approvedRevision
      : a.liveRevision && a.liveRevision !== a.revisionNumber ? a.liveRevision
        : a.revisionNumber > 1 ? a.revisionNumber - 1 : null;
    const parts = [];
    if (base) {
      const label = base === a.approvedRevision ? 'last approved' : base === a.liveRevision ? 'live' : 'previous';
      parts.push(h('p', {}, `Revision ${a.revisionNumber} against the ${label} revision ${base}:`));
      parts.push(renderDiff(await fetchDiff(a.id, base, a.revisionNumber)));
    } else {
      parts.push(h('p', { class: 'meta' }, 'This is the first revision; there is nothing to compare it with.'));
    }
    const comments = a.comments.filter((c) => c.revision === a.revisionNumber);
    parts.push(h('h3', {}, `Comments on revision ${a.revisionNumber}`));
    parts.push(comments.length ? h('ul', { class: 'comments' }, comments.map((c) => h('li', {}, h('strong', {}, c.author ? c.author.name : 'system'), ` (${when(c.createdAt)}): `, c.body))) : h('p', { class: 'empty' }, 'No comments yet.'));
    if (can('REVIEWER') || can('EDITOR')) {
      const body = h('textarea', { name: 'comment', required: true, rows: 2 });
      parts.push(h('form', { class: 'inline', onsubmit: (e) => { e.preventDefault(); run('Comment added', m('addReviewComment', 'revision: Int!, body: String!'), { revision: a.revisionNumber, body: body.value }); } },
        field('Add a comment', body), h('button', { type: 'submit' }, 'Add comment')));
    }
    return section('Review', ...parts);
  };

  const compare = (a) => {
    const options = (sel) => a.revisions.map((r) => h('option', { value: r.number, selected: r.number === sel }, `Revision ${r.number}`));
    const from = h('select', { name: 'from' }, options(Math.max(1, a.revisionNumber - 1)));
    const to = h('select', { name: 'to' }, options(a.revisionNumber));
    const out = h('div', { class: 'diff-out', 'aria-live': 'polite' });
    return section('Compare revisions', h('form', { class: 'inline', onsubmit: async (e) => {
      e.preventDefault();
      try { out.replaceChildren(renderDiff(await fetchDiff(a.id, Number(from.value), Number(to.value)))); } catch (err) { out.replaceChildren(alertBox(plainWords(err))); }
    } }, field('From', from), field('To', to), h('button', { type: 'submit' }, 'Compare')), out);
  };

  const asOf = (a) => {
    const version = h('input', { type: 'number', min: 1, max: a.version, value: 1, name: 'version' });
    const at = h('input', { type: 'datetime-local', name: 'at', step: 1 });
    const out = h('div', { 'aria-live': 'polite' });
    return section('As it was', h('form', { class: 'inline', onsubmit: async (e) => {
      e.preventDefault();
      try {
        // A time, when one is given, else the version.
        const vars = at.value ? { id: a.id, at: new Date(at.value).toISOString() } : { id: a.id, v: Number(version.value) };
        const d = await gql('query($id: ID!, $v: Int, $at: DateTime) { article(id: $id) { asOf(version: $v, at: $at) { version status revisionNumber updatedAt content { headline standfirst } bodyHtml } } }', vars);
        const s = d.article.asOf;
        if (!s) { out.replaceChildren(h('p', {}, 'The article did not exist yet then.')); return; }
        const body = h('div', { class: 'prose' });
        body.innerHTML = s.bodyHtml; // sanitised by the API
        out.replaceChildren(h('div', { class: 'snapshot' }, h('p', {}, `At version ${s.version} (${when(s.updatedAt)}): `, badge(s.status), ` revision ${s.revisionNumber}`), h('h3', {}, s.content.headline), h('p', { class: 'standfirst' }, s.content.standfirst), body));
      } catch (err) { out.replaceChildren(alertBox(plainWords(err))); }
    } }, field('Version', version), field('Or at a time (your clock)', at), h('button', { type: 'submit' }, 'Show')), out);
  };

  const timeline = async (a) => {
    const d = await gql('query($id: ID!) { article(id: $id) { history(first: 100, order: NEWEST_FIRST) { edges { node { version type recordedAt payload actorUser { name } } } } } }', { id: a.id });
    const detail = (p) => p.reason || p.correction || p.body || (p.revision ? `revision ${p.revision}` : '') || (p.until ? `until ${when(p.until)}` : '') || (p.publishAt ? `at ${when(p.publishAt)}` : '');
    return section('Timeline', h('ol', { class: 'timeline', reversed: true }, d.article.history.edges.map(({ node }) => h('li', {},
      h('span', { class: 'event-type' }, node.type), ' by ', h('strong', {}, node.actorUser ? node.actorUser.name : 'the scheduler'),
      ` at ${when(node.recordedAt)} (version ${node.version})`, detail(node.payload || {}) ? h('span', { class: 'meta' }, ` — ${detail(node.payload)}`) : null))));
  };

  const render = async () => {
    const d = await gql(`query($id: ID!) { article(id: $id) { ${ARTICLE}
        revisions { number createdAt author { name } restoredFrom }
        comments { id revision body createdAt author { name } } } }`, { id });
    const a = d.article;
    if (!a) { main.replaceChildren(h('h1', {}, 'Not found'), h('p', {}, 'There is no such article.')); return; }
    current = a;
    const body = h('div', { class: 'prose' });
    body.innerHTML = a.bodyHtml; // sanitised by the API (ammonia)
    const facts = h('dl', { class: 'facts' },
      h('dt', {}, 'Status'), h('dd', {}, badge(a.status)),
      h('dt', {}, 'Version'), h('dd', {}, String(a.version)),
      h('dt', {}, 'Revision'), h('dd', {}, String(a.revisionNumber)),
      h('dt', {}, 'Live revision'), h('dd', {}, a.liveRevision ? String(a.liveRevision) : 'none'),
      h('dt', {}, 'Approved revision'), h('dd', {}, a.approvedRevision ? String(a.approvedRevision) : 'none'),
      a.embargoUntil ? [h('dt', {}, 'Embargo until'), h('dd', {}, when(a.embargoUntil))] : null,
      a.scheduledFor ? [h('dt', {}, 'Scheduled for'), h('dd', {}, when(a.scheduledFor))] : null,
      a.scheduleBlockedReason ? [h('dt', {}, 'Blocked'), h('dd', {}, a.scheduleBlockedReason)] : null,
      h('dt', {}, 'Authors'), h('dd', {}, a.authors.map((u) => u.name).join(', ') || '—'),
      h('dt', {}, 'Updated'), h('dd', {}, when(a.updatedAt)));
    const parts = [
      h('p', { class: 'crumbs' }, h('a', { href: '#/desk' }, 'Desk'), ' › Article'),
      h('h1', {}, a.headline || '(no headline)'),
      facts,
      message,
      section('Actions', actions(a)),
      await review(a),
      section('Content',
        h('p', { class: 'standfirst' }, a.standfirst),
        h('p', { class: 'meta' }, `Slug ${a.slug || '—'} · ${a.category || 'no category'} · ${a.language} · by ${a.byline.join(', ') || '—'}`),
        a.tags.length ? h('ul', { class: 'tags', 'aria-label': 'Tags' }, a.tags.map((t) => h('li', {}, t))) : null,
        body),
      compare(a),
      asOf(a),
      await timeline(a),
    ];
    main.replaceChildren(...parts.filter(Boolean));
  };
  await render();
  let pending = null;
  let seen = 0;
  // Whether the person has typed into one of the view's fields.
  const typing = () => [...main.querySelectorAll('input, textarea')].some((el) => el.type !== 'hidden' && el.value !== el.defaultValue);
  return {
    onEvent(e) {
      if (e.articleId !== id || !current || e.version <= current.version) return;
      seen = Math.max(seen, e.version);
      clearTimeout(pending);
      // Re-checked when the timer fires: the person's own action may have re-rendered first.
      pending = setTimeout(() => {
        if (seen <= current.version) return;
        if (typing()) {
          // Never wipe what the person is typing: offer the latest instead.
          message.replaceChildren(h('p', { role: 'status' }, 'Someone changed this article meanwhile. ',
            h('button', { type: 'button', onclick: () => { message.replaceChildren(); render(); } }, 'Show the latest')));
          return;
        }
        message.replaceChildren();
        render().then(() => announce('This article changed; the page shows the latest.')).catch(() => {});
      }, 150);
    },
  };
}

// ---------------------------------------------------------------- write and revise

function splitList(s) {
  return s.split(',').map((x) => x.trim()).filter(Boolean);
}

export async function write(main, { id } = {}) {
  let started = null;
  if (id) {
    const d = await gql(`query($id: ID!) { article(id: $id) { ${ARTICLE} } }`, { id });
    started = d.article;
    if (!started) { main.replaceChildren(h('h1', {}, 'Not found')); return {}; }
  }
  if (!can('EDITOR')) {
    main.replaceChildren(h('h1', {}, 'Write'), h('p', {}, 'Writing needs the EDITOR role, which you do not hold.'));
    return {};
  }
  const idempotencyKey = crypto.randomUUID();
  const v = started || { headline: '', standfirst: '', body: '', slug: '', category: '', tags: [], byline: [], language: 'en' };
  const inputs = {
    headline: h('input', { name: 'headline', value: v.headline, required: true, maxlength: 300 }),
    standfirst: h('textarea', { name: 'standfirst', rows: 2 }, v.standfirst),
    body: h('textarea', { name: 'body', rows: 14, class: 'mono' }, v.body),
    slug: h('input', { name: 'slug', value: v.slug || '', pattern: '[a-z0-9]+(-[a-z0-9]+)*', autocapitalize: 'none', spellcheck: 'false' }),
    category: h('input', { name: 'category', value: v.category || '' }),
    tags: h('input', { name: 'tags', value: v.tags.join(', ') }),
    byline: h('input', { name: 'byline', value: v.byline.join(', ') }),
    language: h('input', { name: 'language', value: v.language, maxlength: 35 }),
  };
  const preview = h('div', { class: 'prose preview', 'aria-live': 'polite' });
  const message = h('div', { class: 'messages' });
  const content = () => ({
    headline: inputs.headline.value,
    standfirst: inputs.standfirst.value,
    body: inputs.body.value,
    slug: inputs.slug.value.trim() || null,
    category: inputs.category.value.trim() || null,
    tags: splitList(inputs.tags.value),
    byline: splitList(inputs.byline.value),
    language: inputs.language.value.trim() || null,
  });
  let previewTimer = null;
  const refreshPreview = async () => {
    try {
      const d = await gql('query($m: String!) { previewMarkdown(markdown: $m) }', { m: inputs.body.value });
      preview.innerHTML = d.previewMarkdown; // sanitised by the API
    } catch (e) {
      preview.replaceChildren(alertBox(plainWords(e)));
    }
  };
  inputs.body.addEventListener('input', () => { clearTimeout(previewTimer); previewTimer = setTimeout(refreshPreview, 300); });

  const save = async (expectedVersion) => {
    message.replaceChildren();
    try {
      if (!started) {
        const d = await gql('mutation($c: ContentInput!, $k: String) { createArticle(content: $c, idempotencyKey: $k) { article { id } } }', { c: content(), k: idempotencyKey });
        announce('The article was created.');
        window.location.hash = `#/article/${d.createArticle.article.id}`;
      } else {
        await gql('mutation($id: ID!, $v: Int!, $c: ContentInput!) { reviseDraft(articleId: $id, expectedVersion: $v, content: $c) { article { id version } } }', { id: started.id, v: expectedVersion, c: content() });
        announce('The revision was saved.');
        window.location.hash = `#/article/${started.id}`;
      }
    } catch (e) {
      if (e instanceof ApiError && e.code === 'CONFLICT' && started) {
        await conflict();
      } else {
        message.replaceChildren(alertBox(plainWords(e)));
      }
    }
  };

  // Someone saved first: show what they changed since this form was opened, and let the
  // person choose. Nothing is overwritten without that choice, and history keeps both.
  const conflict = async () => {
    const d = await gql(`query($id: ID!) { article(id: $id) { ${ARTICLE} } }`, { id: started.id });
    const theirs = d.article;
    const parts = [
      h('h2', { id: 'conflict-title' }, 'Someone else saved first'),
      h('p', {}, `This form was opened at version ${started.version} (revision ${started.revisionNumber}); the article is now at version ${theirs.version} (revision ${theirs.revisionNumber}). Here is what changed meanwhile:`),
    ];
    if (theirs.revisionNumber !== started.revisionNumber) {
      parts.push(renderDiff(await fetchDiff(started.id, started.revisionNumber, theirs.revisionNumber)));
    } else {
      parts.push(h('p', {}, `The content is the same; its status is now ${STATUS_WORDS[theirs.status] || theirs.status}.`));
    }
    parts.push(h('div', { class: 'actions' },
      h('button', { type: 'button', class: 'primary', onclick: () => save(theirs.version) }, 'Save my version anyway'),
      h('button', { type: 'button', onclick: () => write(main, { id: started.id }).then(() => announce('Their version is loaded; your changes were discarded.')) }, 'Discard mine and load theirs')));
    message.replaceChildren(h('section', { class: 'panel conflict', role: 'alert', 'aria-labelledby': 'conflict-title' }, parts));
    message.scrollIntoView();
  };

  const form = h('form', { class: 'editor', onsubmit: (e) => { e.preventDefault(); save(started ? started.version : 0); } },
    field('Headline', inputs.headline),
    field('Standfirst', inputs.standfirst),
    h('div', { class: 'split' },
      field('Body (Markdown)', inputs.body),
      h('div', { class: 'field' }, h('h2', { class: 'label' }, 'Preview'), preview)),
    h('div', { class: 'grid' },
      field('Slug', inputs.slug, 'Lowercase words and hyphens; derived from the headline when empty.'),
      field('Category', inputs.category),
      field('Tags', inputs.tags, 'Separated by commas.'),
      field('Byline', inputs.byline, 'Names separated by commas.'),
      field('Language', inputs.language, 'A BCP 47 tag such as en or fr-BE.')),
    h('div', { class: 'actions' }, h('button', { type: 'submit', class: 'primary' }, started ? 'Save revision' : 'Create article'),
      started ? h('a', { href: `#/article/${started.id}`, class: 'button' }, 'Cancel') : null));
  main.replaceChildren(
    h('h1', {}, started ? `Revise: ${started.headline}` : 'New article'),
    started ? h('p', { class: 'meta' }, `Editing revision ${started.revisionNumber}, version ${started.version}.`) : null,
    message, form);
  refreshPreview();
  return {};
}

// ---------------------------------------------------------------- search

export async function search(main, { q = '' } = {}) {
  const input = h('input', { type: 'search', name: 'q', value: q });
  const results = h('div', { 'aria-live': 'polite' });
  const form = h('form', { class: 'inline', role: 'search', onsubmit: (e) => { e.preventDefault(); window.location.hash = `#/search?q=${encodeURIComponent(input.value)}`; } },
    field('Search articles', input), h('button', { type: 'submit' }, 'Search'));
  main.replaceChildren(h('h1', {}, 'Search'), form, results);
  if (q.trim()) {
    const d = await gql(`query($q: String!) { articles(filter: {text: $q}, orderBy: RELEVANCE, first: 50) { nodes { ...Row } } } ${ROW}`, { q });
    const nodes = d.articles.nodes;
    results.replaceChildren(h('h2', {}, `${nodes.length} result(s) for “${q}”`), list(nodes, 'No article matches.'));
  }
  return {};
}

// ---------------------------------------------------------------- dashboard

function seconds(s) {
  if (s === null || s === undefined) return '—';
  if (s < 120) return `${Math.round(s)} s`;
  if (s < 7200) return `${Math.round(s / 60)} min`;
  return `${(s / 3600).toFixed(1)} h`;
}

export async function dashboard(main, { from, to, category } = {}) {
  const today = new Date();
  const day = (d) => d.toISOString().slice(0, 10);
  const fromV = from || day(new Date(today.getTime() - 29 * 86400000));
  const toV = to || day(today);
  const inputs = {
    from: h('input', { type: 'date', name: 'from', value: fromV, required: true }),
    to: h('input', { type: 'date', name: 'to', value: toV, required: true }),
    category: h('input', { name: 'category', value: category || '' }),
  };
  const form = h('form', { class: 'inline', onsubmit: (e) => {
    e.preventDefault();
    const p = new URLSearchParams({ from: inputs.from.value, to: inputs.to.value, category: inputs.category.value });
    window.location.hash = `#/dashboard?${p}`;
  } }, field('From', inputs.from), field('To (inclusive)', inputs.to), field('Category', inputs.category), h('button', { type: 'submit' }, 'Show'));
  const toExclusive = new Date(`${toV}T00:00:00Z`);
  toExclusive.setUTCDate(toExclusive.getUTCDate() + 1);
  const d = (await gql(`query($from: DateTime, $to: DateTime, $category: String) { dashboard(from: $from, to: $to, category: $category) {
      statusCounts { status count } publishedPerDay { day count }
      timeToFirstPublish { count p50Seconds p90Seconds } reviewTurnaround { count p50Seconds p90Seconds }
      bounceBacks { changesRequested articles } reviewers { reviewer { name } approvals changesRequested medianTurnaroundSeconds }
      overdue { articleId headline scheduledFor blockedReason } } }`,
  { from: `${fromV}T00:00:00Z`, to: toExclusive.toISOString(), category: category || null })).dashboard;
  const figures = (f) => `${f.count} · median ${seconds(f.p50Seconds)} · 90th percentile ${seconds(f.p90Seconds)}`;
  main.replaceChildren(
    h('h1', {}, 'Dashboard'), form,
    h('div', { class: 'grid charts' },
      section('Articles by status', barChart('Articles by status', d.statusCounts.map((s) => ({ label: STATUS_WORDS[s.status], value: s.count })))),
      section('Published per day', columnChart('Publications per day', d.publishedPerDay.map((p) => ({ label: p.day, value: p.count })))),
      section('Time to first publish', h('p', { class: 'figure' }, figures(d.timeToFirstPublish)),
        barChart('Time to first publish', [{ label: 'Median', value: d.timeToFirstPublish.p50Seconds || 0 }, { label: '90th percentile', value: d.timeToFirstPublish.p90Seconds || 0 }], seconds)),
      section('Review turnaround', h('p', { class: 'figure' }, figures(d.reviewTurnaround)),
        barChart('Review turnaround', [{ label: 'Median', value: d.reviewTurnaround.p50Seconds || 0 }, { label: '90th percentile', value: d.reviewTurnaround.p90Seconds || 0 }], seconds)),
      section('Bounce-backs', barChart('Articles by times sent back', d.bounceBacks.map((b) => ({ label: `sent back ${b.changesRequested}×`, value: b.articles })))),
      section('Reviewers', d.reviewers.length ? h('table', {}, h('caption', {}, 'Decisions per reviewer'),
        h('thead', {}, h('tr', {}, ['Reviewer', 'Approvals', 'Changes requested', 'Median turnaround'].map((t) => h('th', { scope: 'col' }, t)))),
        h('tbody', {}, d.reviewers.map((r) => h('tr', {}, h('th', { scope: 'row' }, r.reviewer ? r.reviewer.name : '?'), h('td', {}, String(r.approvals)), h('td', {}, String(r.changesRequested)), h('td', {}, seconds(r.medianTurnaroundSeconds))))))
        : h('p', { class: 'empty' }, 'No review decisions in this period.')),
      section('Overdue', list(d.overdue, 'Nothing is overdue.', (o) => h('li', {}, h('a', { href: `#/article/${o.articleId}` }, o.headline), ` due ${when(o.scheduledFor)}`, o.blockedReason ? ` — ${o.blockedReason}` : '')))));
  return {};
}
