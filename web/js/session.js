// @ts-check
/**
 * Who is signed in, and the page header that follows from it. Every
 * signed-in page starts with {@link requireUser}.
 */

import { api, setUnauthorizedHandler } from './api.js';
import { h, replace } from './dom.js';
import { failure } from './feedback.js';

/** @typedef {import('./types.js').User} User */
/** @typedef {import('./types.js').Role} Role */

/** Pages in the main navigation, by role. */
const NAV = /** @type {const} */ ([
  { href: '/dashboard', label: 'Dashboard', roles: ['patient', 'doctor', 'admin'] },
  { href: '/book', label: 'Book', roles: ['patient'] },
  { href: '/availability', label: 'Availability', roles: ['doctor'] },
  { href: '/admin', label: 'Admin', roles: ['admin'] },
  { href: '/account', label: 'Account', roles: ['patient', 'doctor', 'admin'] },
]);

const ROLE_NAMES = { patient: 'patients', doctor: 'doctors', admin: 'administrators' };

/**
 * A same-site path to come back to after signing in; anything else (an
 * absolute or protocol-relative URL) is ignored, so a crafted link cannot
 * send someone elsewhere.
 * @param {string | null} next
 */
export function safeNext(next) {
  return next && next.startsWith('/') && !next.startsWith('//') && !next.startsWith('/\\') ? next : '/dashboard';
}

export function goToLogin() {
  const here = location.pathname + location.search;
  location.assign(`/login?next=${encodeURIComponent(here)}`);
}

/**
 * The signed-in user, with the header drawn; sends the browser to sign in
 * when there is no session. Resolves to null (after saying why) when the
 * user's role may not use this page.
 * @param {readonly Role[]} [roles] who may use the page; all when omitted
 * @returns {Promise<User | null>}
 */
export async function requireUser(roles) {
  setUnauthorizedHandler(goToLogin);
  const main = document.querySelector('main');
  /** @type {User} */
  let user;
  try {
    user = await api.me();
  } catch (error) {
    if (main && !(error instanceof Error && 'status' in error && error.status === 401)) {
      replace(main, failure(error, 'Could not load your account.'));
    }
    return null;
  }
  renderHeader(user);
  if (roles && !roles.includes(user.role)) {
    if (main) {
      const who = roles.map((r) => ROLE_NAMES[r]).join(' and ');
      replace(main, h('h1', {}, 'Not available'),
        h('p', { class: 'notice' }, `This page is for ${who}. `, h('a', { href: '/dashboard' }, 'Go to your dashboard')));
    }
    return null;
  }
  return user;
}

/** @param {User} user */
function renderHeader(user) {
  const header = document.getElementById('site-header');
  if (!header) return;
  const links = NAV.filter((item) => /** @type {readonly string[]} */ (item.roles).includes(user.role)).map((item) =>
    h('li', {}, h('a', { href: item.href, 'aria-current': location.pathname === item.href ? 'page' : null }, item.label)));
  const signOut = h('button', { type: 'button', class: 'link-button', id: 'sign-out' }, 'Sign out');
  signOut.addEventListener('click', async () => {
    signOut.disabled = true;
    signOut.textContent = 'Signing out…';
    try {
      await api.logout();
    } catch {
      // Signed out already or the server is gone: either way, leave.
    }
    location.assign('/login');
  });
  replace(header,
    h('a', { class: 'brand', href: '/dashboard' }, 'Consulta'),
    h('nav', { 'aria-label': 'Main' }, h('ul', {}, ...links)),
    h('div', { class: 'who' },
      h('span', { class: 'who-name', id: 'who-name' }, user.name),
      h('span', { class: 'muted who-zone', title: 'Times are shown in this time zone' }, user.timezone),
      signOut));
}
