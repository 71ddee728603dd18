// @ts-check
/**
 * Times as people read them: in the viewer's time zone (their account's,
 * from `/api/me`), in their browser's language. The wire is always UTC.
 */

/** Whether the browser knows this IANA zone. @param {string} zone */
export function isKnownZone(zone) {
  try {
    new Intl.DateTimeFormat(undefined, { timeZone: zone });
    return true;
  } catch {
    return false;
  }
}

/** The browser's own zone, for defaults. */
export function browserZone() {
  return Intl.DateTimeFormat().resolvedOptions().timeZone || 'UTC';
}

/** Every zone the browser knows, for pickers. */
export function allZones() {
  /** @type {string[]} */
  let zones = [];
  try {
    zones = Intl.supportedValuesOf('timeZone');
  } catch {
    zones = [];
  }
  const set = new Set(zones);
  set.add('UTC');
  set.add(browserZone());
  return [...set].sort();
}

/**
 * Formatters bound to one zone.
 * @param {string} zone IANA name; an unknown one falls back to the browser's.
 */
export function inZone(zone) {
  const timeZone = isKnownZone(zone) ? zone : browserZone();
  const dateTime = new Intl.DateTimeFormat(undefined, {
    timeZone, weekday: 'short', day: 'numeric', month: 'short', hour: '2-digit', minute: '2-digit',
  });
  const time = new Intl.DateTimeFormat(undefined, { timeZone, hour: '2-digit', minute: '2-digit' });
  const day = new Intl.DateTimeFormat(undefined, { timeZone, weekday: 'long', day: 'numeric', month: 'long' });
  const parts = new Intl.DateTimeFormat('en-US', { timeZone, year: 'numeric', month: '2-digit', day: '2-digit' });
  const zoneName = new Intl.DateTimeFormat(undefined, { timeZone, timeZoneName: 'short' });
  /** @param {string | Date | number} t */
  const d = (t) => (t instanceof Date ? t : new Date(t));
  return {
    zone: timeZone,
    /** "Tue, 1 Dec, 09:00" @param {string | Date | number} t */
    dateTime: (t) => dateTime.format(d(t)),
    /** "09:00" @param {string | Date | number} t */
    time: (t) => time.format(d(t)),
    /** "Tuesday, 1 December" @param {string | Date | number} t */
    day: (t) => day.format(d(t)),
    /** The calendar date in this zone, "2026-12-01", for grouping. @param {string | Date | number} t */
    dayKey: (t) => {
      /** @type {Record<string, string>} */
      const p = {};
      for (const part of parts.formatToParts(d(t))) p[part.type] = part.value;
      return `${p.year}-${p.month}-${p.day}`;
    },
    /** "CET", "GMT+1" at that instant. @param {string | Date | number} t */
    abbreviation: (t) => zoneName.formatToParts(d(t)).find((p) => p.type === 'timeZoneName')?.value || timeZone,
  };
}

/** @typedef {ReturnType<typeof inZone>} ZoneFormat */

/**
 * "1 h 05 min", "12 min", "less than a minute".
 * @param {number} ms
 */
export function duration(ms) {
  const minutes = Math.floor(ms / 60_000);
  if (minutes < 1) return 'less than a minute';
  const days = Math.floor(minutes / 1440);
  const hours = Math.floor((minutes % 1440) / 60);
  const rest = minutes % 60;
  if (days > 0) return `${days} d ${hours} h`;
  if (hours > 0) return `${hours} h ${String(rest).padStart(2, '0')} min`;
  return `${rest} min`;
}

/**
 * The server's clock as seen from here: the dashboard tells its `now`, and
 * countdowns use that rather than a possibly wrong local clock.
 */
export const serverClock = {
  offset: 0,
  /** @param {string} serverNow */
  sync(serverNow) {
    const t = Date.parse(serverNow);
    if (!Number.isNaN(t)) this.offset = t - Date.now();
  },
  now() {
    return Date.now() + this.offset;
  },
};
