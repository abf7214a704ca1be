// The access page (global admins): users and their grants, tokens; create,
// change and revoke. Tokens are shown once, when made.

import * as api from './api.js';
import { h, fill, table, act, confirmDialog, formDialog, errorBox } from './ui.js';

export async function render(main, _params, signal) {
  fill(main, h('h1', {}, 'Access'));
  if (!api.session.authEnabled) {
    main.append(
      h('p', {}, 'Authentication is off on this node (', h('code', {}, 'auth.enabled'), '): every request is allowed. See docs/auth.md to turn it on.'),
    );
    return;
  }
  const users = h('div', { id: 'users' }, h('p', { class: 'muted' }, 'Loading…'));
  const tokens = h('div', { id: 'tokens' }, h('p', { class: 'muted' }, 'Loading…'));
  const reload = async () => {
    try {
      const [{ body: userList }, { body: tokenList }] = await Promise.all([
        api.get('/v1/auth/users', { signal }),
        api.get('/v1/auth/tokens', { signal }),
      ]);
      fill(users, userTable(userList, reload));
      fill(tokens, tokenTable(tokenList, reload));
    } catch (err) {
      if (err.name === 'AbortError') return;
      fill(users, errorBox(err));
      fill(tokens);
    }
  };
  main.append(
    h('div', { class: 'title' }, h('h2', {}, 'Users'), h('button', { type: 'button', class: 'primary', onclick: () => createUser(reload) }, 'Create user')),
    users,
    h('div', { class: 'title' }, h('h2', {}, 'Tokens'), h('button', { type: 'button', class: 'primary', onclick: () => createToken(reload) }, 'Create token')),
    tokens,
  );
  await reload();
}

function userTable(users, reload) {
  const rows = users.map((user) => [
    h('strong', {}, user.name),
    user.grants.length
      ? h(
          'ul',
          { class: 'meta' },
          user.grants.map((g) =>
            h(
              'li',
              {},
              `${g.role} on ${g.namespace === '*' ? 'every namespace' : g.namespace} `,
              h('button', { type: 'button', class: 'link', onclick: () => revokeGrant(user, g, reload) }, 'revoke'),
            ),
          ),
        )
      : h('span', { class: 'muted' }, 'none'),
    user.has_password ? 'yes' : 'no',
    String(user.tokens),
    h(
      'div',
      { class: 'buttons' },
      h('button', { type: 'button', class: 'secondary', onclick: () => grant(user, reload) }, 'Grant'),
      h('button', { type: 'button', class: 'secondary', onclick: () => setPassword(user, reload) }, 'Password'),
      h('button', { type: 'button', class: 'danger', onclick: () => deleteUser(user, reload) }, 'Delete'),
    ),
  ]);
  return table(['User', 'Grants', 'Password', 'Tokens', ''], rows, 'No users.');
}

function tokenTable(tokens, reload) {
  const rows = tokens.map((token) => [
    h('code', {}, token.id),
    token.user,
    token.kind,
    token.name || '',
    new Date(token.created_at_ms).toLocaleString(),
    token.expires_at_ms ? new Date(token.expires_at_ms).toLocaleString() : 'never',
    h('button', { type: 'button', class: 'danger', onclick: () => revokeToken(token, reload) }, 'Revoke'),
  ]);
  return table(['Id', 'User', 'Kind', 'Name', 'Created', 'Expires', ''], rows, 'No tokens.');
}

async function createUser(reload) {
  const values = await formDialog('Create a user', [
    { name: 'name', label: 'Name', required: true },
    { name: 'password', label: 'Password (empty: token-only user)', type: 'password', autocomplete: 'new-password' },
  ], 'Create');
  if (!values) return;
  if (await act(`User ${values.name} created.`, () => api.post('/v1/auth/users', { name: values.name, password: values.password || undefined }))) await reload();
}

async function setPassword(user, reload) {
  const values = await formDialog(`New password for ${user.name}`, [
    { name: 'password', label: 'Password', type: 'password', required: true, autocomplete: 'new-password' },
  ]);
  if (!values) return;
  if (await act(`Password of ${user.name} changed.`, () => api.put(`/v1/auth/users/${api.seg(user.name)}/password`, { password: values.password }))) await reload();
}

async function deleteUser(user, reload) {
  if (!(await confirmDialog(`Delete user ${user.name} and revoke its tokens?`))) return;
  if (await act(`User ${user.name} deleted.`, () => api.del(`/v1/auth/users/${api.seg(user.name)}`))) await reload();
}

async function grant(user, reload) {
  const values = await formDialog(`Grant a role to ${user.name}`, [
    { name: 'namespace', label: 'Namespace (* for every namespace)', required: true },
    { name: 'role', label: 'Role', type: 'select', value: 'read', options: [['read', 'read'], ['write', 'write'], ['admin', 'admin']] },
  ], 'Grant');
  if (!values) return;
  if (await act(`${values.role} on ${values.namespace} granted to ${user.name}.`, () => api.put(`/v1/auth/users/${api.seg(user.name)}/grants`, values))) await reload();
}

async function revokeGrant(user, g, reload) {
  if (!(await confirmDialog(`Revoke ${g.role} on ${g.namespace} from ${user.name}?`, 'Revoke'))) return;
  if (await act('Grant revoked.', () => api.del(`/v1/auth/users/${api.seg(user.name)}/grants/${api.seg(g.namespace)}`))) await reload();
}

async function createToken(reload) {
  const values = await formDialog('Create a token', [
    { name: 'user', label: 'For user (empty: yourself)' },
    { name: 'name', label: 'Name', required: true },
    { name: 'ttl', label: 'Expires after (seconds, empty: never)', type: 'number', min: 1 },
  ], 'Create');
  if (!values) return;
  try {
    const { body } = await api.post('/v1/auth/tokens', {
      user: values.user || undefined,
      name: values.name,
      ttl_seconds: values.ttl ? Number(values.ttl) : undefined,
    });
    await formDialog('Token created: copy it now, it is not shown again', [
      { name: 'token', label: `Token ${body.id} for ${body.user}`, value: body.token },
    ], 'Done');
    await reload();
  } catch (err) {
    await act('', () => Promise.reject(err));
  }
}

async function revokeToken(token, reload) {
  if (!(await confirmDialog(`Revoke token ${token.id} of ${token.user}?`, 'Revoke'))) return;
  if (await act(`Token ${token.id} revoked.`, () => api.del(`/v1/auth/tokens/${api.seg(token.id)}`))) await reload();
}
