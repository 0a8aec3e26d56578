// The console's only way to act: the public GraphQL API, over HTTP with the session cookie
// (sent by the browser, unreadable here) and the session's CSRF token, and the `events`
// subscription over graphql-transport-ws at /graphql/ws.

const csrfMeta = document.querySelector('meta[name="galley-csrf"]');
const csrf = csrfMeta ? csrfMeta.content : '';

/** An error the API answered with; `code` is its `extensions.code`. */
export class ApiError extends Error {
  constructor(errors) {
    const first = errors[0] || {};
    super(first.message || 'The request failed.');
    this.errors = errors;
    this.code = (first.extensions && first.extensions.code) || 'INTERNAL_SERVER_ERROR';
    this.extensions = first.extensions || {};
  }
}

/** Runs one GraphQL operation and returns its data, or throws an ApiError. */
export async function gql(query, variables = {}) {
  let res;
  try {
    res = await fetch('/graphql', {
      method: 'POST',
      credentials: 'same-origin',
      headers: {
        'content-type': 'application/json',
        accept: 'application/graphql-response+json',
        'x-csrf-token': csrf,
      },
      body: JSON.stringify({ query, variables }),
    });
  } catch (e) {
    throw new ApiError([{ message: 'The server cannot be reached.', extensions: { code: 'NETWORK' } }]);
  }
  let body = null;
  try {
    body = await res.json();
  } catch (e) {
    body = null;
  }
  if (res.status === 401) {
    window.location.assign('/');
  }
  if (!body) {
    throw new ApiError([{ message: `The server answered ${res.status}.` }]);
  }
  if (body.errors && body.errors.length) {
    throw new ApiError(body.errors);
  }
  return body.data;
}

/** An API refusal in plain words. */
export function plainWords(error) {
  if (!(error instanceof ApiError)) {
    return `Something went wrong: ${error.message}`;
  }
  const m = error.message;
  switch (error.code) {
    case 'CONFLICT':
      return 'Someone else changed this article since you opened it. Look at what changed and choose again.';
    case 'FORBIDDEN':
      return `Your roles do not allow this (${m}).`;
    case 'SELF_APPROVAL':
      return 'You wrote this revision, so someone else must approve it (four eyes).';
    case 'INVALID_TRANSITION':
      return `This cannot be done in the article's current status: ${m}`;
    case 'EMBARGOED':
      return `The article is under embargo: ${m}`;
    case 'VALIDATION_FAILED':
      return `Please check ${error.extensions.field || 'the form'}: ${m}`;
    case 'SLUG_TAKEN':
      return 'Another article already uses this slug; choose another.';
    case 'NOT_FOUND':
      return 'There is no such article.';
    case 'RATE_LIMITED':
      return 'Too many requests at once; wait a moment and try again.';
    case 'UNAUTHENTICATED':
      return 'Your session has ended; sign in again.';
    case 'IDEMPOTENCY_KEY_REUSED':
      return 'This request was already sent with different content.';
    default:
      return `The server could not do this: ${m}`;
  }
}

/**
 * Calls `onEvent(event)` for every event appended anywhere from now on (the `events`
 * subscription), reconnecting after a dropped connection. Returns a function that stops it.
 */
export function liveEvents(onEvent, onState = () => {}) {
  let socket = null;
  let stopped = false;
  let delay = 500;
  const connect = () => {
    const scheme = window.location.protocol === 'https:' ? 'wss:' : 'ws:';
    socket = new WebSocket(`${scheme}//${window.location.host}/graphql/ws`, 'graphql-transport-ws');
    socket.addEventListener('open', () => {
      socket.send(JSON.stringify({ type: 'connection_init', payload: {} }));
    });
    socket.addEventListener('message', (m) => {
      let msg;
      try {
        msg = JSON.parse(m.data);
      } catch (e) {
        return;
      }
      if (msg.type === 'connection_ack') {
        delay = 500;
        onState('live');
        socket.send(JSON.stringify({
          id: 'events',
          type: 'subscribe',
          payload: { query: 'subscription { events { position type articleId version } }' },
        }));
      } else if (msg.type === 'next' && msg.payload && msg.payload.data) {
        onEvent(msg.payload.data.events);
      } else if (msg.type === 'ping') {
        socket.send(JSON.stringify({ type: 'pong' }));
      }
    });
    socket.addEventListener('close', (e) => {
      onState('offline');
      if (stopped) return;
      if (e.code === 4403) {
        window.location.assign('/');
        return;
      }
      setTimeout(connect, delay);
      delay = Math.min(delay * 2, 10000);
    });
  };
  connect();
  return () => {
    stopped = true;
    if (socket) socket.close(1000);
  };
}
