// What the page's modules share: who is signed in, the view shown, the
// folder listing on screen, and the live connection's timers.

export const state = {
  session: null, // {auth, token_name, scope, csrf}
  route: { view: 'browse', dir: '' },
  gen: 0, // bumped on every render; late answers for an old view are dropped
  listing: null, // the folder shown: see renderBrowse
  ws: null,
  wsDelay: 1000, // the next reconnection's delay
  wsWasDown: false, // a reconnection must reload what is shown
  wsTimer: 0,
  refreshTimer: 0,
  pollTimer: 0,
};

export const canWrite = () => state.session && state.session.scope === 'write';
