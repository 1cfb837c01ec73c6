// The admin API as the console calls it: JSON in and out, the token kept in sessionStorage
// only (it ends with the tab, and no request carries it by itself) and sent as a Bearer
// header; every failure is thrown as an ApiError that the views turn into words. A 401
// forgets the token and hands control back to the login form.

const KEY = 'vmsd.token';

export const session = {
  token: () => sessionStorage.getItem(KEY),
  save: (t) => sessionStorage.setItem(KEY, t),
  forget: () => sessionStorage.removeItem(KEY),
};

export class ApiError extends Error {
  constructor(status, body, retryAfter) {
    super((body && body.message) || `HTTP ${status}`);
    this.status = status;
    this.body = body || {};
    this.retryAfter = retryAfter;
  }
}

let unauthenticated = () => {};

/** What to do when the API says the token no longer works. */
export function onUnauthenticated(fn) {
  unauthenticated = fn;
}

export async function api(method, path, body) {
  const headers = { Accept: 'application/json', 'X-Client': 'web' };
  const token = session.token();
  if (token) headers.Authorization = `Bearer ${token}`;
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  let r;
  try {
    r = await fetch(path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      cache: 'no-store',
      credentials: 'omit',
      redirect: 'error',
    });
  } catch {
    throw new ApiError(0, null, null);
  }
  let data = null;
  try {
    data = await r.json();
  } catch {
    data = null;
  }
  if (r.ok) return data;
  const e = new ApiError(r.status, data, r.headers.get('Retry-After'));
  if (r.status === 401 && token) {
    session.forget();
    unauthenticated();
  }
  throw e;
}

export const get = (path, query) => {
  const q = query ? new URLSearchParams(Object.entries(query).filter(([, v]) => v !== '' && v != null)) : null;
  return api('GET', q && q.toString() ? `${path}?${q}` : path);
};
export const post = (path, body) => api('POST', path, body ?? {});
export const put = (path, body) => api('PUT', path, body ?? {});
export const del = (path) => api('DELETE', path);

/** The API takes at most this many camera ids per list in one request (SPEC §4.3). */
export const CAMERA_BATCH = 500;

/** Splits attach/detach lists into requests of at most CAMERA_BATCH ids per list. */
export function cameraBatches(attach, detach) {
  const out = [];
  for (let i = 0; i < Math.max(attach.length, detach.length); i += CAMERA_BATCH) {
    const b = {};
    const a = attach.slice(i, i + CAMERA_BATCH);
    const d = detach.slice(i, i + CAMERA_BATCH);
    if (a.length) b.cameras_to_attach = a;
    if (d.length) b.cameras_to_detach = d;
    out.push(b);
  }
  return out;
}
