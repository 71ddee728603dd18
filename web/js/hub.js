// @ts-check
/**
 * The page's one WebSocket to `/ws` (docs/signaling.md): live pushes for
 * the dashboard and the signaling of the video room.
 *
 * - States: `connecting` (first attempt), `connected` (after `hello`),
 *   `reconnecting` (waiting to try again: 1 s doubling to 30 s, with
 *   jitter), `ended` (the session ended, close code 4001: off to sign in).
 * - After every (re)connect the page's data is re-read through
 *   `refreshNow('push')`: pushes missed while away are not replayed.
 * - User activity (throttled to one frame a minute) and calls in progress
 *   send `ping`, which keeps the session from idling out.
 */

import { CloseCode, encodeClientMessage, parseServerMessage } from './protocol.js';
import { refreshNow } from './refresh.js';
import { goToLogin } from './session.js';
import { serverClock } from './time.js';

/** @typedef {import('./protocol.js').ServerMessage} ServerMessage */
/** @typedef {import('./protocol.js').ClientMessage} ClientMessage */
/** @typedef {'connecting' | 'connected' | 'reconnecting' | 'ended'} HubState */

const FIRST_DELAY_MS = 1_000;
const MAX_DELAY_MS = 30_000;
/** A connection that does not say `hello` within this is abandoned. */
const HELLO_TIMEOUT_MS = 10_000;
/** At most one activity ping per this long. */
const ACTIVITY_PING_MS = 60_000;
/** While a call runs, a ping this often (well under the session's idle timeout). */
const CALL_PING_MS = 60_000;

/** Frames the dashboard re-reads REST for. */
const PUSHES = new Set(['appointment.created', 'appointment.updated', 'appointment.cancelled', 'room.presence']);

export class Hub {
  constructor() {
    /** @type {HubState} */
    this.state = 'connecting';
    /** @type {WebSocket | null} */
    this.socket = null;
    /** How many times a connection reached `hello`. */
    this.connections = 0;
    this.delay = FIRST_DELAY_MS;
    /** @type {ReturnType<typeof setTimeout> | undefined} */
    this.retryTimer = undefined;
    /** @type {ReturnType<typeof setInterval> | undefined} */
    this.callTimer = undefined;
    this.lastPing = 0;
    this.started = false;
    /** @type {Set<(message: ServerMessage) => void>} */
    this.messageListeners = new Set();
    /** @type {Set<(state: HubState, hub: Hub) => void>} */
    this.stateListeners = new Set();
  }

  /** Opens the socket (once) and starts watching for user activity. */
  start() {
    if (this.started) return this;
    this.started = true;
    const onActivity = () => this.activity();
    for (const event of ['pointerdown', 'keydown', 'wheel', 'touchstart']) {
      window.addEventListener(event, onActivity, { passive: true, capture: true });
    }
    // Coming back to a tab whose socket died while hidden: try at once.
    document.addEventListener('visibilitychange', () => {
      if (document.visibilityState === 'visible' && this.state === 'reconnecting') this.retryNow();
    });
    window.addEventListener('online', () => {
      if (this.state === 'reconnecting') this.retryNow();
    });
    this.open();
    return this;
  }

  /** @param {(message: ServerMessage) => void} listener @returns {() => void} */
  onMessage(listener) {
    this.messageListeners.add(listener);
    return () => this.messageListeners.delete(listener);
  }

  /** @param {(state: HubState, hub: Hub) => void} listener @returns {() => void} */
  onState(listener) {
    this.stateListeners.add(listener);
    return () => this.stateListeners.delete(listener);
  }

  /**
   * Sends a frame; false when the socket is not open (the caller retries
   * after the next `connected`).
   * @param {ClientMessage} message
   */
  send(message) {
    const socket = this.socket;
    if (!socket || socket.readyState !== WebSocket.OPEN || this.state !== 'connected') return false;
    socket.send(encodeClientMessage(message));
    if (message.type === 'ping') this.lastPing = Date.now();
    return true;
  }

  /** The user did something: ping, at most once a minute. */
  activity() {
    if (Date.now() - this.lastPing >= ACTIVITY_PING_MS) this.send({ type: 'ping' });
  }

  /** While `on`, ping every minute whatever the user does (a call in progress). @param {boolean} on */
  inCall(on) {
    clearInterval(this.callTimer);
    this.callTimer = on ? setInterval(() => this.send({ type: 'ping' }), CALL_PING_MS) : undefined;
    if (on) this.send({ type: 'ping' });
  }

  /** Drops the current socket and connects again now (e.g. a Retry button). */
  retryNow() {
    if (this.state === 'ended') return;
    clearTimeout(this.retryTimer);
    this.delay = FIRST_DELAY_MS;
    const old = this.socket;
    this.socket = null;
    if (old) {
      old.onclose = null;
      old.close();
    }
    this.open();
  }

  /** @param {HubState} state */
  setState(state) {
    if (state === this.state && state !== 'connected') return;
    this.state = state;
    for (const listener of [...this.stateListeners]) {
      try {
        listener(state, this);
      } catch (error) {
        console.warn('hub state listener failed', error);
      }
    }
  }

  open() {
    if (this.state !== 'reconnecting') this.setState(this.connections === 0 ? 'connecting' : 'reconnecting');
    const url = `${location.protocol === 'https:' ? 'wss:' : 'ws:'}//${location.host}/ws`;
    /** @type {WebSocket} */
    let socket;
    try {
      socket = new WebSocket(url);
    } catch {
      this.scheduleRetry();
      return;
    }
    this.socket = socket;
    const helloTimer = setTimeout(() => {
      if (this.socket === socket && this.state !== 'connected') socket.close();
    }, HELLO_TIMEOUT_MS);
    socket.onmessage = (event) => {
      if (this.socket !== socket || typeof event.data !== 'string') return;
      const message = parseServerMessage(event.data);
      if (!message) return;
      if (message.type === 'hello') {
        clearTimeout(helloTimer);
        this.connections += 1;
        this.delay = FIRST_DELAY_MS;
        this.lastPing = Date.now();
        serverClock.sync(message.server_time);
        this.setState('connected');
        // Whatever happened while away: REST is the truth.
        refreshNow('push');
      }
      for (const listener of [...this.messageListeners]) {
        try {
          listener(message);
        } catch (error) {
          console.warn('hub message listener failed', error);
        }
      }
    };
    socket.onclose = (event) => {
      clearTimeout(helloTimer);
      if (this.socket !== socket) return;
      this.socket = null;
      if (event.code === CloseCode.SESSION_ENDED) {
        this.setState('ended');
        goToLogin();
        return;
      }
      this.scheduleRetry();
    };
  }

  scheduleRetry() {
    this.setState('reconnecting');
    clearTimeout(this.retryTimer);
    // Full jitter on the upper half: many tabs of a restarted server do not come back at once.
    const wait = this.delay / 2 + Math.random() * (this.delay / 2);
    this.delay = Math.min(this.delay * 2, MAX_DELAY_MS);
    this.retryTimer = setTimeout(() => this.open(), wait);
  }
}

/** The page's hub, shared by every module of the page. */
export const hub = new Hub();

/**
 * Starts the hub for a page whose data comes from `keepFresh`: pushes
 * about appointments and rooms re-run the page's refresh.
 */
export function startLiveUpdates() {
  hub.onMessage((message) => {
    if (PUSHES.has(message.type)) refreshNow('push');
  });
  return hub.start();
}
