// The OpenID Connect provider MailBeacon's sign-in tests talk to: the certified
// `oidc-provider` package with two clients and plain-form login and consent pages
// (a headless browser or a form-walking client completes them).
//   OP_PORT            port on 127.0.0.1 (issuer http://127.0.0.1:OP_PORT)
//   ACCESS_TOKEN_TTL   access token lifetime in seconds (short: refresh tests)
//   OP_USERS           JSON {"email": "password", ...}
// Prints "READY <issuer>" once listening. Tokens live in memory only.
import http from 'node:http';
import crypto from 'node:crypto';
import Provider from 'oidc-provider';

const PORT = Number(process.env.OP_PORT || 18080);
const ISSUER = `http://127.0.0.1:${PORT}`;
const ACCESS_TOKEN_TTL = Number(process.env.ACCESS_TOKEN_TTL || 300);
const USERS = JSON.parse(process.env.OP_USERS || '{"alice@example.test": "alice-pw"}');

async function findAccount(ctx, id) {
  if (!(id in USERS)) return undefined;
  return {
    accountId: id,
    async claims() { return { sub: id, email: id, email_verified: true, name: id }; },
  };
}

const { privateKey } = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 });
const jwk = { ...privateKey.export({ format: 'jwk' }), kid: 'k1', use: 'sig', alg: 'RS256' };

const provider = new Provider(ISSUER, {
  clients: [
    {
      // MailBeacon: a public native client, PKCE, loopback redirect on any port (RFC 8252)
      client_id: 'mailbeacon',
      application_type: 'native',
      token_endpoint_auth_method: 'none',
      grant_types: ['authorization_code', 'refresh_token', 'urn:ietf:params:oauth:grant-type:device_code'],
      response_types: ['code'],
      redirect_uris: ['http://127.0.0.1/callback'],
      scope: 'openid email profile offline_access mail',
    },
    {
      // Dovecot: only checks bearer tokens at the introspection endpoint
      client_id: 'dovecot',
      client_secret: 'dovecot-secret',
      token_endpoint_auth_method: 'client_secret_basic',
      grant_types: [],
      response_types: [],
      redirect_uris: [],
    },
  ],
  scopes: ['openid', 'offline_access', 'email', 'profile', 'mail'],
  claims: { email: ['email', 'email_verified'], profile: ['name'] },
  findAccount,
  // Dovecot matches the login name against the introspected `email`.
  async extraTokenClaims(ctx, token) {
    if (token.kind === 'AccessToken' && token.accountId) return { email: token.accountId };
    return undefined;
  },
  async issueRefreshToken(ctx, client) { return client.grantTypeAllowed('refresh_token'); },
  pkce: { required: () => true },
  features: {
    devInteractions: { enabled: false },
    deviceFlow: { enabled: true },
    introspection: { enabled: true },
    revocation: { enabled: true },
  },
  ttl: {
    AccessToken: ACCESS_TOKEN_TTL, AuthorizationCode: 60, DeviceCode: 600, IdToken: 3600,
    RefreshToken: 14 * 24 * 3600, Grant: 14 * 24 * 3600, Interaction: 3600, Session: 14 * 24 * 3600,
  },
  interactions: { url: (ctx, interaction) => `/interaction/${interaction.uid}` },
  cookies: { keys: [crypto.randomBytes(16).toString('hex')] },
  jwks: { keys: [jwk] },
});
provider.on('server_error', (ctx, err) => console.error('server_error', err));

const esc = (s) => String(s).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
const page = (title, body) => `<!DOCTYPE html><html><head><meta charset="utf-8"><title>${esc(title)}</title></head><body><h1>${esc(title)}</h1>${body}</body></html>`;
const send = (res, status, html) => {
  res.writeHead(status, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store' });
  res.end(html);
};
async function readForm(req) {
  let data = '';
  for await (const chunk of req) data += chunk;
  return Object.fromEntries(new URLSearchParams(data));
}

async function interaction(req, res) {
  const url = new URL(req.url, ISSUER);
  const [, , uid, action] = url.pathname.split('/');
  const details = await provider.interactionDetails(req, res);
  if (details.uid !== uid) return send(res, 400, page('Error', '<p>uid mismatch</p>'));
  const { prompt, params, session } = details;
  if (req.method === 'GET' && !action) {
    if (prompt.name === 'login') {
      return send(res, 200, page('Sign in', `
<form id="login" method="post" action="/interaction/${uid}/login">
  <label>Email <input id="username" name="login" type="text"></label>
  <label>Password <input id="password" name="password" type="password"></label>
  <button id="submit" type="submit">Sign in</button>
</form>`));
    }
    if (prompt.name === 'consent') {
      return send(res, 200, page('Authorize', `
<p id="scopes">${esc(params.client_id)} asks for: ${esc(params.scope || '')}</p>
<form id="consent" method="post" action="/interaction/${uid}/confirm"><button id="allow" type="submit">Allow</button></form>
<form method="post" action="/interaction/${uid}/abort"><button id="deny" type="submit">Deny</button></form>`));
    }
    return send(res, 501, page('Error', `<p>${esc(prompt.name)}</p>`));
  }
  if (req.method === 'POST' && action === 'login') {
    const form = await readForm(req);
    if (!(form.login in USERS) || USERS[form.login] !== form.password) {
      return send(res, 401, page('Sign in', '<p id="error">Invalid email or password.</p>'));
    }
    return provider.interactionFinished(req, res, { login: { accountId: form.login } }, { mergeWithLastSubmission: false });
  }
  if (req.method === 'POST' && action === 'confirm') {
    await readForm(req);
    const missing = prompt.details;
    const grant = details.grantId
      ? await provider.Grant.find(details.grantId)
      : new provider.Grant({ accountId: session.accountId, clientId: params.client_id });
    if (missing.missingOIDCScope) grant.addOIDCScope(missing.missingOIDCScope.join(' '));
    if (missing.missingOIDCClaims) grant.addOIDCClaims(missing.missingOIDCClaims);
    if (missing.missingResourceScopes) {
      for (const [indicator, scopes] of Object.entries(missing.missingResourceScopes)) {
        grant.addResourceScope(indicator, scopes.join(' '));
      }
    }
    const grantId = await grant.save();
    return provider.interactionFinished(req, res, { consent: { grantId } }, { mergeWithLastSubmission: true });
  }
  if (req.method === 'POST' && action === 'abort') {
    return provider.interactionFinished(req, res, { error: 'access_denied', error_description: 'The user said no' }, { mergeWithLastSubmission: false });
  }
  return send(res, 404, page('Not found', ''));
}

const oidc = provider.callback();
const server = http.createServer((req, res) => {
  if (req.url.startsWith('/interaction/')) {
    interaction(req, res).catch((err) => {
      if (!res.headersSent) send(res, 400, page('Error', `<p>${esc(err.message)}</p>`));
    });
    return;
  }
  oidc(req, res);
});
server.listen(PORT, '127.0.0.1', () => console.log(`READY ${ISSUER}`));
for (const sig of ['SIGTERM', 'SIGINT']) process.on(sig, () => server.close(() => process.exit(0)));
