// The newsroom story in the console, as three people at once in three browser contexts
// (plus a second editor and a viewer), in headless Chromium driven by playwright-core, with
// axe-core checking each main view. Run by tests/tests/console_browser.rs, which starts the
// servers and passes:
//   GALLEY_URL_A   the server the editor and the publisher use
//   GALLEY_URL_B   the server the reviewer uses (another replica on PostgreSQL)
//   GALLEY_SEED    the seed article's content as JSON
//   GALLEY_SCREENSHOTS  a folder for screenshots of each main view
//   GALLEY_PASSWORD     every user's password
// Prints "STORY COMPLETE <article id>" and exits 0 when every step passed.

import { chromium } from 'playwright-core';
import axe from 'axe-core';
import fs from 'node:fs';
import path from 'node:path';

const A = process.env.GALLEY_URL_A;
const B = process.env.GALLEY_URL_B || A;
const seed = JSON.parse(process.env.GALLEY_SEED);
const shots = process.env.GALLEY_SCREENSHOTS;
const password = process.env.GALLEY_PASSWORD;
fs.mkdirSync(shots, { recursive: true });

const step = (what) => console.log(`step: ${what}`);
const fail = (what) => { throw new Error(what); };

const browser = await chromium.launch({
  executablePath: process.env.GALLEY_CHROMIUM || '/usr/bin/chromium',
  headless: true,
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync'],
});

const problems = [];
const pages = [];

async function person(name, base, viewport = { width: 1280, height: 900 }, { keyboard = false } = {}) {
  const context = await browser.newContext({ viewport });
  const page = await context.newPage();
  pages.push([name, page]);
  page.setDefaultTimeout(20000);
  page.on('console', (m) => {
    if (m.type() === 'error') problems.push(`${name}: console error: ${m.text()}`);
  });
  page.on('pageerror', (e) => problems.push(`${name}: page error: ${e.message}`));
  await page.goto(`${base}/`);
  if (keyboard) {
    // With the keyboard alone: Tab to the name, type, Tab to the password, type, Enter.
    await page.keyboard.press('Tab');
    if (await page.evaluate(() => document.activeElement.id) !== 'name') fail('Tab does not reach the user name first');
    await page.keyboard.type(name);
    await page.keyboard.press('Tab');
    await page.keyboard.type(password);
    await page.keyboard.press('Enter');
  } else {
    await page.getByLabel('User name').fill(name);
    await page.getByLabel('Password').fill(password);
    await page.getByRole('button', { name: 'Sign in' }).click();
  }
  await page.waitForURL(`${base}/console`);
  await page.locator('#feed-state[data-state="live"]').waitFor();
  return { name, page, base, context };
}

async function checkA11y(page, view) {
  await page.evaluate(axe.source);
  const result = await page.evaluate(async () => window.axe.run(document, { resultTypes: ['violations'] }));
  const bad = result.violations.filter((v) => v.impact === 'serious' || v.impact === 'critical');
  for (const v of bad) {
    problems.push(`axe on ${view}: ${v.id} (${v.impact}): ${v.help} — ${v.nodes.map((n) => n.target.join(' ')).slice(0, 3).join(', ')}`);
  }
  console.log(`axe: ${view}: ${result.violations.length} violation(s), ${bad.length} serious or critical`);
}

// The visible part only, so the pictures stay small enough to keep in docs/screenshots/.
async function shot(page, name) {
  await page.screenshot({ path: path.join(shots, `${name}.png`) });
}

function panel(page, title) {
  return page.locator('section.panel', { has: page.getByRole('heading', { name: title }) });
}

// Waits for an action's confirmation; fails at once with the console's words if it refused.
async function done(page, what) {
  const ok = page.locator('.messages .ok', { hasText: `${what}: done.` });
  const refused = page.locator('.messages .error').first();
  const outcome = await Promise.race([
    ok.waitFor().then(() => 'ok'),
    refused.waitFor().then(() => 'refused'),
  ].map((p) => p.catch((e) => e)));
  if (outcome === 'refused') fail(`${what} was refused: ${await refused.textContent()}`);
  if (outcome instanceof Error) throw outcome;
}

try {
  // The sign-in page, as a newcomer sees it.
  {
    const ctx = await browser.newContext({ viewport: { width: 1280, height: 800 } });
    const page = await ctx.newPage();
    await page.goto(`${A}/`);
    await page.getByRole('heading', { name: 'Galley' }).waitFor();
    await checkA11y(page, 'sign-in');
    await shot(page, 'sign-in');
    await page.getByLabel('User name').fill('edith');
    await page.getByLabel('Password').fill('not-the-password');
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByRole('alert').filter({ hasText: 'user name or password is wrong' }).waitFor();
    await ctx.close();
  }

  step('three people sign in');
  const [editor, reviewer, publisher] = await Promise.all([
    person('edith', A), person('rob', B), person('penny', A)]);
  const cookies = await editor.page.evaluate(() => document.cookie);
  if (cookies.includes('galley_session')) fail('the session cookie is readable by scripts');

  // The reviewer watches their desk.
  await reviewer.page.getByRole('heading', { name: /Waiting for my review/ }).waitFor();
  await checkA11y(reviewer.page, 'desk');

  step('the editor writes the seed article');
  const e = editor.page;
  await e.getByRole('link', { name: 'New article' }).click();
  await e.getByLabel('Headline').fill(seed.headline);
  await e.getByLabel('Standfirst').fill(seed.standfirst);
  await e.getByLabel('Body (Markdown)').fill(seed.body);
  await e.getByLabel('Category').fill(seed.category || '');
  await e.getByLabel('Tags').fill((seed.tags || []).join(', '));
  await e.getByLabel('Byline').fill((seed.byline || []).join(', '));
  const firstWords = seed.body.replace(/[#*_`>\[\]()]/g, ' ').split(/\s+/).filter((w) => w.length > 4)[0];
  await e.locator('.preview', { hasText: firstWords }).waitFor();
  await checkA11y(e, 'write');
  await shot(e, 'write');
  await e.getByRole('button', { name: 'Create article' }).click();
  await e.getByRole('heading', { level: 1, name: seed.headline, exact: true }).waitFor();
  const id = e.url().split('/article/')[1];
  if (!id) fail(`no article id in ${e.url()}`);
  await e.getByRole('button', { name: 'Submit for review' }).click();
  await done(e, 'Submitted for review');

  step('the reviewer sees it arrive without reloading');
  const r = reviewer.page;
  const queue = panel(r, /Waiting for my review/);
  await queue.getByRole('link', { name: seed.headline, exact: true }).waitFor();
  await shot(r, 'desk');
  await queue.getByRole('link', { name: seed.headline, exact: true }).click();
  await r.getByRole('heading', { name: 'Review' }).waitFor();
  await r.getByLabel('Add a comment').fill('The second paragraph needs a source.');
  await r.getByRole('button', { name: 'Add comment' }).click();
  await done(r, 'Comment added');
  await r.getByLabel('Request changes').fill('Cite the KFOR statement.');
  await r.getByRole('button', { name: 'Request changes' }).click();
  await done(r, 'Changes requested');

  step('two editors revise at once; the second sees the conflict');
  await e.locator('.facts .badge', { hasText: 'Changes requested' }).waitFor();
  const second = await person('eddie', A);
  const s = second.page;
  await Promise.all([
    e.goto(`${A}/console#/edit/${id}`), s.goto(`${A}/console#/edit/${id}`)]);
  await Promise.all([e.getByLabel('Body (Markdown)').waitFor(), s.getByLabel('Body (Markdown)').waitFor()]);
  await e.getByLabel('Body (Markdown)').fill(`${seed.body}\n\nKFOR said so in a statement.`);
  await e.getByRole('button', { name: 'Save revision' }).click();
  await e.getByRole('heading', { level: 1, name: seed.headline, exact: true }).waitFor();
  await s.getByLabel('Headline').fill(`${seed.headline} (second take)`);
  await s.getByRole('button', { name: 'Save revision' }).click();
  const conflict = s.getByRole('alert').filter({ hasText: 'Someone else saved first' });
  await conflict.waitFor();
  await conflict.locator('ins', { hasText: 'statement' }).first().waitFor();
  await checkA11y(s, 'conflict');
  await shot(s, 'conflict');
  await s.getByRole('button', { name: 'Discard mine and load theirs' }).click();
  // The form is rebuilt with the saved revision, and the second editor's headline is gone.
  await s.waitForFunction(() => {
    const body = document.querySelector('textarea[name="body"]');
    return body && body.value.includes('KFOR said so in a statement.');
  });
  const headline = await s.getByLabel('Headline').inputValue();
  if (headline !== seed.headline) fail(`the second editor's form still says ${headline}`);
  await second.context.close();

  await e.getByRole('button', { name: 'Submit for review' }).click();
  await done(e, 'Submitted for review');

  step('the reviewer approves revision 2');
  await r.getByRole('button', { name: 'Approve revision 2' }).waitFor();
  await r.locator('.diff ins', { hasText: 'statement' }).first().waitFor();
  await checkA11y(r, 'review');
  await shot(r, 'review');
  await r.getByRole('button', { name: 'Approve revision 2' }).click();
  await done(r, 'Approved');

  step('the publisher publishes');
  const p = publisher.page;
  const approved = panel(p, /^Approved/);
  await approved.getByRole('link', { name: seed.headline, exact: true }).waitFor();
  await approved.getByRole('link', { name: seed.headline, exact: true }).click();
  await p.getByRole('button', { name: 'Publish now' }).click();
  await done(p, 'Published');
  await p.locator('.facts .badge', { hasText: 'Published' }).waitFor();

  step('a correction: revised, approved, published with a note');
  await e.locator('.facts .badge', { hasText: 'Published' }).waitFor();
  await e.getByRole('link', { name: 'Revise' }).click();
  await e.getByLabel('Body (Markdown)').fill(`${seed.body}\n\nKFOR said so in a statement on Monday.`);
  await e.getByRole('button', { name: 'Save revision' }).click();
  await e.getByRole('heading', { level: 1, name: seed.headline, exact: true }).waitFor();
  await e.getByRole('button', { name: 'Submit for review' }).click();
  await done(e, 'Submitted for review');
  await r.getByRole('button', { name: 'Approve revision 3' }).waitFor();
  // The review shows revision 3 against the live revision 2.
  await r.getByText('against the live revision 2').waitFor();
  await r.getByRole('button', { name: 'Approve revision 3' }).click();
  await done(r, 'Approved');
  await p.getByLabel('Publish correction').waitFor();
  await p.getByLabel('Publish correction').fill('An earlier version did not say when KFOR spoke.');
  await p.getByRole('button', { name: 'Publish correction' }).click();
  await done(p, 'Correction published');

  step('the timeline and a diff show what happened');
  const timeline = panel(p, 'Timeline');
  for (const type of ['ArticleCreated', 'ChangesRequested', 'RevisionApproved', 'ArticlePublished']) {
    await timeline.getByText(type).first().waitFor();
  }
  await timeline.getByText('An earlier version did not say when KFOR spoke.').waitFor();
  const compare = panel(p, 'Compare revisions');
  await compare.getByLabel('From').selectOption('1');
  await compare.getByLabel('To').selectOption('3');
  await compare.getByRole('button', { name: 'Compare' }).click();
  await compare.locator('.diff[data-from="1"][data-to="3"] ins', { hasText: 'Monday' }).first().waitFor();
  const asOf = panel(p, 'As it was');
  await asOf.getByLabel('Version').fill('1');
  await asOf.getByRole('button', { name: 'Show' }).click();
  await asOf.locator('.snapshot', { hasText: 'Draft' }).waitFor();
  await checkA11y(p, 'article');
  await asOf.scrollIntoViewIfNeeded();
  await shot(p, 'article');

  step('four eyes: an editor who also reviews cannot approve their own revision');
  const rita = await person('rita', A);
  const own = rita.page;
  await own.getByRole('link', { name: 'New article' }).click();
  await own.getByLabel('Headline').fill('A piece Rita wrote herself');
  await own.getByLabel('Body (Markdown)').fill('Short and *sweet*.');
  await own.getByRole('button', { name: 'Create article' }).click();
  await own.getByRole('heading', { level: 1, name: 'A piece Rita wrote herself', exact: true }).waitFor();
  const ritaId = own.url().split('/article/')[1];
  await own.getByRole('button', { name: 'Submit for review' }).click();
  await done(own, 'Submitted for review');
  await own.getByRole('button', { name: 'Approve revision 1' }).click();
  await own.getByRole('alert').filter({ hasText: 'someone else must approve it (four eyes)' }).waitFor();
  await rita.context.close();

  step('the publishing desk: schedule, cancel, embargo, lift, unpublish, archive, restore');
  const own2 = `${A}/console#/article/${ritaId}`;
  await r.goto(`${B}/console#/article/${ritaId}`);
  await r.getByRole('button', { name: 'Approve revision 1' }).click();
  await done(r, 'Approved');
  await p.goto(own2);
  await p.getByRole('heading', { level: 1, name: 'A piece Rita wrote herself', exact: true }).waitFor();
  const nextYear = `${new Date().getUTCFullYear() + 1}-06-01T09:30`;
  await p.getByLabel('Schedule').fill(nextYear);
  await p.getByRole('button', { name: 'Schedule' }).click();
  await done(p, 'Scheduled');
  await p.locator('.facts .badge', { hasText: 'Scheduled' }).waitFor();
  await p.getByRole('button', { name: 'Cancel schedule' }).click();
  await done(p, 'Schedule cancelled');
  await p.locator('.facts .badge', { hasText: 'Approved' }).waitFor();
  // A hash change renders the new view asynchronously: wait for it before touching its form.
  const ritaHeading = (page) => page.getByRole('heading', { level: 1, name: 'A piece Rita wrote herself', exact: true }).waitFor();
  await e.goto(own2);
  await ritaHeading(e);
  await e.getByLabel('Set embargo').fill(nextYear);
  await e.getByRole('button', { name: 'Set embargo' }).click();
  await done(e, 'Embargo set');
  await p.locator('.facts dt', { hasText: 'Embargo until' }).waitFor();
  await p.getByRole('button', { name: 'Publish now' }).click();
  await p.getByRole('alert').filter({ hasText: 'under embargo' }).waitFor();
  const admin = await person('ada', A);
  await admin.page.goto(own2);
  await admin.page.getByLabel('Lift embargo').fill('The minister spoke early.');
  await admin.page.getByRole('button', { name: 'Lift embargo' }).click();
  await done(admin.page, 'Embargo lifted');
  await admin.context.close();
  await p.locator('.facts dt', { hasText: 'Embargo until' }).waitFor({ state: 'detached' });
  await p.getByRole('button', { name: 'Publish now' }).click();
  await done(p, 'Published');
  await p.getByLabel('Unpublish').fill('Legal asked us to take it down.');
  await p.getByRole('button', { name: 'Unpublish' }).click();
  await done(p, 'Unpublished');
  await p.getByRole('button', { name: 'Archive' }).click();
  await done(p, 'Archived');
  await p.getByRole('button', { name: 'Restore from the archive' }).click();
  await done(p, 'Restored');
  await p.locator('.facts .badge', { hasText: 'Draft' }).waitFor();
  // An old revision comes back as a new one on the main article; history keeps all.
  await e.goto(`${A}/console#/article/${id}`);
  await e.getByRole('heading', { level: 1, name: seed.headline, exact: true }).waitFor();
  await e.getByLabel('Restore revision').selectOption('1');
  await e.getByRole('button', { name: 'Restore revision' }).click();
  await done(e, 'Revision restored');
  await e.locator('.facts dd', { hasText: /^4$/ }).first().waitFor();

  step('a viewer can read but not act');
  const viewer = await person('vic', B, undefined, { keyboard: true });
  // The first Tab in the console reaches the skip link.
  await viewer.page.getByRole('heading', { level: 1, name: 'Desk' }).waitFor();
  await viewer.page.keyboard.press('Tab');
  if (await viewer.page.evaluate(() => document.activeElement.textContent) !== 'Skip to content') fail('the first Tab does not reach the skip link');
  const v = viewer.page;
  if (await v.getByRole('link', { name: 'New article' }).count()) fail('the viewer is offered New article');
  await v.goto(`${B}/console#/article/${id}`);
  await v.getByRole('heading', { level: 1, name: seed.headline, exact: true }).waitFor();
  await v.getByText('Your roles allow no action on this article now').waitFor();
  for (const name of ['Revise', 'Publish now', 'Unpublish', 'Archive', 'Submit for review']) {
    if (await v.getByRole('button', { name }).count() || await v.getByRole('link', { name, exact: true }).count()) fail(`the viewer is offered ${name}`);
  }
  // Acting anyway (the API decides) is refused in plain words.
  await v.goto(`${B}/console#/write`);
  await v.getByText('Writing needs the EDITOR role').waitFor();

  step('search and dashboard');
  await v.goto(`${B}/console#/search?q=${encodeURIComponent('kfor')}`);
  await v.getByRole('link', { name: seed.headline, exact: true }).waitFor();
  await checkA11y(v, 'search');
  await shot(v, 'search');
  await v.goto(`${B}/console#/dashboard`);
  await v.locator('svg.chart').first().waitFor();
  const perDay = panel(v, 'Published per day').getByRole('img', { name: 'Publications per day' });
  await perDay.waitFor();
  // Three publications today (the seed article, its correction, Rita's piece): the chart's
  // description says so.
  const described = await perDay.evaluate((svg) => svg.querySelector('desc').textContent);
  if (!/^3 in \d+ days/.test(described)) fail(`the per-day chart says: ${described}`);
  await panel(v, 'Articles by status').getByRole('img', { name: 'Articles by status' }).waitFor();
  await checkA11y(v, 'dashboard');
  await shot(v, 'dashboard');

  step('a phone-sized screen');
  const phone = await person('rob', B, { width: 390, height: 844 });
  await phone.page.goto(`${B}/console#/article/${id}`);
  await phone.page.getByRole('heading', { level: 1, name: seed.headline, exact: true }).waitFor();
  const overflow = await phone.page.evaluate(() => document.documentElement.scrollWidth > window.innerWidth + 1);
  if (overflow) fail('the article view scrolls sideways on a phone-sized screen');
  await checkA11y(phone.page, 'phone article');
  await shot(phone.page, 'phone-article');

  step('sign out');
  await e.getByRole('button', { name: 'Sign out' }).click();
  await e.waitForURL(`${A}/`);
  await e.goto(`${A}/console`);
  await e.waitForURL(`${A}/`);

  if (problems.length) {
    console.error(problems.join('\n'));
    process.exitCode = 1;
  } else {
    console.log(`STORY COMPLETE ${id}`);
  }
} catch (err) {
  console.error(`FAILED: ${err.stack || err}`);
  // What each person saw when it failed.
  for (const [i, [name, page]] of pages.entries()) {
    await page.screenshot({ path: path.join(shots, `failure-${i}-${name}.png`), fullPage: true }).catch(() => {});
  }
  if (problems.length) console.error(problems.join('\n'));
  process.exitCode = 1;
} finally {
  await browser.close();
}
