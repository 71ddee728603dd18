// @ts-check
/**
 * Keeping a page's data fresh. A page registers one refresh function; it
 * runs on a timer and when the tab comes back into view. A push source
 * (the WebSocket hub, in a later slice) calls {@link refreshNow} so that
 * pushed changes and polling go through the very same code.
 */

/** @type {Set<(reason: string) => Promise<void> | void>} */
const refreshers = new Set();

/**
 * Runs every registered refresh (e.g. from a hub message handler).
 * @param {string} reason for logs: 'timer', 'focus', 'push', 'action'
 */
export async function refreshNow(reason) {
  await Promise.all([...refreshers].map(async (refresh) => {
    try {
      await refresh(reason);
    } catch (error) {
      console.warn('refresh failed', error);
    }
  }));
}

/**
 * Registers `refresh`, re-runs it every `everyMs` and when the page gets
 * focus or becomes visible again. Returns a function that stops it.
 * @param {(reason: string) => Promise<void> | void} refresh
 * @param {{everyMs?: number}} [options]
 */
export function keepFresh(refresh, { everyMs = 30_000 } = {}) {
  refreshers.add(refresh);
  let busy = false;
  /** @param {string} reason */
  const run = async (reason) => {
    // A slow server must not pile up requests.
    if (busy) return;
    busy = true;
    try {
      await refresh(reason);
    } catch (error) {
      console.warn('refresh failed', error);
    } finally {
      busy = false;
    }
  };
  const timer = setInterval(() => {
    if (document.visibilityState === 'visible') run('timer');
  }, everyMs);
  const onFocus = () => run('focus');
  const onVisible = () => {
    if (document.visibilityState === 'visible') run('focus');
  };
  window.addEventListener('focus', onFocus);
  document.addEventListener('visibilitychange', onVisible);
  return () => {
    clearInterval(timer);
    window.removeEventListener('focus', onFocus);
    document.removeEventListener('visibilitychange', onVisible);
    refreshers.delete(refresh);
  };
}
