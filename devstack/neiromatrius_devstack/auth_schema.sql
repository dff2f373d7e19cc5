-- GoTrue's tables in `auth`, as Supabase Auth's own migrations (supabase/auth, migrations/) leave them,
-- so that migrations referencing auth.users(id), Studio's Authentication page and the local /auth/v1
-- read and write the same rows as on Supabase. Only the tables a password sign-in uses are here:
-- users, identities, sessions, refresh_tokens, and mfa_amr_claims (a session's `amr` claim).
-- Idempotent and run on every start, after bootstrap.sql: a database made by an older bootstrap
-- (a minimal auth.users) is upgraded in place, column by column.

DO $$
BEGIN
  IF NOT EXISTS (SELECT FROM pg_type WHERE typname = 'aal_level' AND typnamespace = 'auth'::regnamespace) THEN
    CREATE TYPE auth.aal_level AS ENUM ('aal1', 'aal2', 'aal3');
  END IF;
END
$$;
COMMENT ON TYPE auth.aal_level IS 'Auth: authenticator assurance level of a session (20221003041349_add_mfa_schema).';

-- auth.users: the columns GoTrue's migrations add up to is_anonymous (20240214120130).
CREATE TABLE IF NOT EXISTS auth.users (
  instance_id uuid,
  id uuid NOT NULL,
  aud varchar(255),
  role varchar(255),
  email varchar(255),
  encrypted_password varchar(255),
  email_confirmed_at timestamptz,
  invited_at timestamptz,
  confirmation_token varchar(255),
  confirmation_sent_at timestamptz,
  recovery_token varchar(255),
  recovery_sent_at timestamptz,
  email_change_token_new varchar(255),
  email_change varchar(255),
  email_change_sent_at timestamptz,
  last_sign_in_at timestamptz,
  raw_app_meta_data jsonb,
  raw_user_meta_data jsonb,
  is_super_admin boolean,
  created_at timestamptz,
  updated_at timestamptz,
  phone text,
  phone_confirmed_at timestamptz,
  phone_change text DEFAULT '',
  phone_change_token varchar(255) DEFAULT '',
  phone_change_sent_at timestamptz,
  confirmed_at timestamptz GENERATED ALWAYS AS (LEAST(email_confirmed_at, phone_confirmed_at)) STORED,
  email_change_token_current varchar(255) DEFAULT '',
  email_change_confirm_status smallint DEFAULT 0,
  banned_until timestamptz,
  reauthentication_token varchar(255) DEFAULT '',
  reauthentication_sent_at timestamptz,
  is_sso_user boolean NOT NULL DEFAULT false,
  deleted_at timestamptz,
  is_anonymous boolean NOT NULL DEFAULT false,
  CONSTRAINT users_pkey PRIMARY KEY (id),
  CONSTRAINT users_email_change_confirm_status_check
    CHECK (email_change_confirm_status >= 0 AND email_change_confirm_status <= 2)
);

-- In-place upgrade of the minimal auth.users of older bootstraps (no-ops on a fresh database).
ALTER TABLE auth.users
  ADD COLUMN IF NOT EXISTS invited_at timestamptz,
  ADD COLUMN IF NOT EXISTS confirmation_token varchar(255),
  ADD COLUMN IF NOT EXISTS confirmation_sent_at timestamptz,
  ADD COLUMN IF NOT EXISTS recovery_token varchar(255),
  ADD COLUMN IF NOT EXISTS recovery_sent_at timestamptz,
  ADD COLUMN IF NOT EXISTS email_change_token_new varchar(255),
  ADD COLUMN IF NOT EXISTS email_change varchar(255),
  ADD COLUMN IF NOT EXISTS email_change_sent_at timestamptz,
  ADD COLUMN IF NOT EXISTS phone_confirmed_at timestamptz,
  ADD COLUMN IF NOT EXISTS phone_change text DEFAULT '',
  ADD COLUMN IF NOT EXISTS phone_change_token varchar(255) DEFAULT '',
  ADD COLUMN IF NOT EXISTS phone_change_sent_at timestamptz,
  ADD COLUMN IF NOT EXISTS email_change_token_current varchar(255) DEFAULT '',
  ADD COLUMN IF NOT EXISTS email_change_confirm_status smallint DEFAULT 0,
  ADD COLUMN IF NOT EXISTS banned_until timestamptz,
  ADD COLUMN IF NOT EXISTS reauthentication_token varchar(255) DEFAULT '',
  ADD COLUMN IF NOT EXISTS reauthentication_sent_at timestamptz,
  ADD COLUMN IF NOT EXISTS is_sso_user boolean NOT NULL DEFAULT false,
  ADD COLUMN IF NOT EXISTS deleted_at timestamptz,
  ADD COLUMN IF NOT EXISTS is_anonymous boolean NOT NULL DEFAULT false,
  ALTER COLUMN created_at DROP DEFAULT,
  ALTER COLUMN updated_at DROP DEFAULT;
DO $$
BEGIN
  -- The old table had a plain confirmed_at; GoTrue's is generated (20210722035447_adds_confirmed_at).
  IF EXISTS (SELECT FROM pg_attribute WHERE attrelid = 'auth.users'::regclass AND attname = 'confirmed_at'
             AND NOT attisdropped AND attgenerated = '') THEN
    UPDATE auth.users SET email_confirmed_at = confirmed_at WHERE email_confirmed_at IS NULL;
    ALTER TABLE auth.users DROP COLUMN confirmed_at;
    -- The old bootstrap also let service_role read auth.users; Supabase grants the API roles nothing
    -- here. Revoked once, with the upgrade, so a project's own later grants survive restarts.
    REVOKE SELECT ON auth.users FROM service_role;
    ALTER TABLE auth.users ADD COLUMN confirmed_at timestamptz
      GENERATED ALWAYS AS (LEAST(email_confirmed_at, phone_confirmed_at)) STORED;
  END IF;
  -- The old table had UNIQUE (email); GoTrue's is unique among non-SSO users only
  -- (20221215195500_modify_users_email_unique_index).
  IF EXISTS (SELECT FROM pg_constraint WHERE conrelid = 'auth.users'::regclass AND conname = 'users_email_key') THEN
    ALTER TABLE auth.users DROP CONSTRAINT users_email_key;
  END IF;
  IF NOT EXISTS (SELECT FROM pg_constraint WHERE conrelid = 'auth.users'::regclass AND conname = 'users_phone_key') THEN
    ALTER TABLE auth.users ADD CONSTRAINT users_phone_key UNIQUE (phone);
  END IF;
  IF NOT EXISTS (SELECT FROM pg_constraint WHERE conrelid = 'auth.users'::regclass
                 AND conname = 'users_email_change_confirm_status_check') THEN
    ALTER TABLE auth.users ADD CONSTRAINT users_email_change_confirm_status_check
      CHECK (email_change_confirm_status >= 0 AND email_change_confirm_status <= 2);
  END IF;
END
$$;
CREATE UNIQUE INDEX IF NOT EXISTS users_email_partial_key ON auth.users (email) WHERE (is_sso_user = false);
CREATE INDEX IF NOT EXISTS users_instance_id_email_idx ON auth.users (instance_id, lower((email)::text));
CREATE INDEX IF NOT EXISTS users_instance_id_idx ON auth.users (instance_id);
CREATE INDEX IF NOT EXISTS users_is_anonymous_idx ON auth.users (is_anonymous);

-- auth.identities: one row per way a user signs in (here: provider 'email', provider_id = user id).
CREATE TABLE IF NOT EXISTS auth.identities (
  provider_id text NOT NULL,
  user_id uuid NOT NULL,
  identity_data jsonb NOT NULL,
  provider text NOT NULL,
  last_sign_in_at timestamptz,
  created_at timestamptz,
  updated_at timestamptz,
  email text GENERATED ALWAYS AS (lower(identity_data ->> 'email')) STORED,
  id uuid NOT NULL DEFAULT gen_random_uuid(),
  CONSTRAINT identities_pkey PRIMARY KEY (id),
  CONSTRAINT identities_provider_id_provider_unique UNIQUE (provider_id, provider),
  CONSTRAINT identities_user_id_fkey FOREIGN KEY (user_id) REFERENCES auth.users (id) ON DELETE CASCADE
);
CREATE INDEX IF NOT EXISTS identities_email_idx ON auth.identities (email text_pattern_ops);
CREATE INDEX IF NOT EXISTS identities_user_id_idx ON auth.identities (user_id);

-- auth.sessions: one row per sign-in; the refresh tokens of one sign-in share its id.
CREATE TABLE IF NOT EXISTS auth.sessions (
  id uuid NOT NULL,
  user_id uuid NOT NULL,
  created_at timestamptz,
  updated_at timestamptz,
  factor_id uuid,
  aal auth.aal_level,
  not_after timestamptz,
  refreshed_at timestamp without time zone,
  user_agent text,
  ip inet,
  tag text,
  CONSTRAINT sessions_pkey PRIMARY KEY (id),
  CONSTRAINT sessions_user_id_fkey FOREIGN KEY (user_id) REFERENCES auth.users (id) ON DELETE CASCADE
);
CREATE INDEX IF NOT EXISTS sessions_not_after_idx ON auth.sessions (not_after DESC);
CREATE INDEX IF NOT EXISTS sessions_user_id_idx ON auth.sessions (user_id);
CREATE INDEX IF NOT EXISTS user_id_created_at_idx ON auth.sessions (user_id, created_at);

-- auth.refresh_tokens: a rotation chain per session; `parent` is the token this one replaced.
CREATE TABLE IF NOT EXISTS auth.refresh_tokens (
  instance_id uuid,
  id bigserial NOT NULL,
  token varchar(255),
  user_id varchar(255),
  revoked boolean,
  created_at timestamptz,
  updated_at timestamptz,
  parent varchar(255),
  session_id uuid,
  CONSTRAINT refresh_tokens_pkey PRIMARY KEY (id),
  CONSTRAINT refresh_tokens_token_unique UNIQUE (token),
  CONSTRAINT refresh_tokens_session_id_fkey FOREIGN KEY (session_id) REFERENCES auth.sessions (id) ON DELETE CASCADE
);
CREATE INDEX IF NOT EXISTS refresh_tokens_instance_id_idx ON auth.refresh_tokens (instance_id);
CREATE INDEX IF NOT EXISTS refresh_tokens_instance_id_user_id_idx ON auth.refresh_tokens (instance_id, user_id);
CREATE INDEX IF NOT EXISTS refresh_tokens_parent_idx ON auth.refresh_tokens (parent);
CREATE INDEX IF NOT EXISTS refresh_tokens_session_id_revoked_idx ON auth.refresh_tokens (session_id, revoked);
CREATE INDEX IF NOT EXISTS refresh_tokens_updated_at_idx ON auth.refresh_tokens (updated_at DESC);

-- auth.mfa_amr_claims: how a session authenticated; GoTrue builds the `amr` claim from these rows.
CREATE TABLE IF NOT EXISTS auth.mfa_amr_claims (
  session_id uuid NOT NULL,
  created_at timestamptz NOT NULL,
  updated_at timestamptz NOT NULL,
  authentication_method text NOT NULL,
  id uuid NOT NULL,
  CONSTRAINT amr_id_pk PRIMARY KEY (id),
  CONSTRAINT mfa_amr_claims_session_id_authentication_method_pkey UNIQUE (session_id, authentication_method),
  CONSTRAINT mfa_amr_claims_session_id_fkey FOREIGN KEY (session_id) REFERENCES auth.sessions (id) ON DELETE CASCADE
);

-- Grants as on Supabase: supabase_auth_admin owns auth's tables (supabase/postgres
-- 00000000000001-auth-schema.sql), postgres and dashboard_user may do anything, and RLS is on with
-- no policy (supabase/auth 20240612123726_enable_rls_update_grants), so the API roles reach these
-- rows only through /auth/v1 and SECURITY DEFINER functions.
ALTER TABLE auth.users OWNER TO supabase_auth_admin;
ALTER TABLE auth.identities OWNER TO supabase_auth_admin;
ALTER TABLE auth.sessions OWNER TO supabase_auth_admin;
ALTER TABLE auth.refresh_tokens OWNER TO supabase_auth_admin;
ALTER TABLE auth.mfa_amr_claims OWNER TO supabase_auth_admin;
ALTER TYPE auth.aal_level OWNER TO supabase_auth_admin;
ALTER TABLE auth.users ENABLE ROW LEVEL SECURITY;
ALTER TABLE auth.identities ENABLE ROW LEVEL SECURITY;
ALTER TABLE auth.sessions ENABLE ROW LEVEL SECURITY;
ALTER TABLE auth.refresh_tokens ENABLE ROW LEVEL SECURITY;
ALTER TABLE auth.mfa_amr_claims ENABLE ROW LEVEL SECURITY;
GRANT ALL PRIVILEGES ON SCHEMA auth TO supabase_auth_admin;
GRANT ALL ON auth.users, auth.identities, auth.sessions, auth.refresh_tokens, auth.mfa_amr_claims
  TO supabase_auth_admin, postgres, dashboard_user;
GRANT ALL ON SEQUENCE auth.refresh_tokens_id_seq TO supabase_auth_admin, postgres, dashboard_user;
GRANT supabase_auth_admin TO postgres;

COMMENT ON TABLE auth.users IS 'Auth: Stores user login data within a secure schema.';
COMMENT ON TABLE auth.identities IS 'Auth: Stores identities associated to a user.';
COMMENT ON TABLE auth.sessions IS 'Auth: Stores session data associated to a user.';
COMMENT ON TABLE auth.refresh_tokens IS 'Auth: Store of tokens used to refresh JWT tokens once they expire.';
COMMENT ON TABLE auth.mfa_amr_claims IS 'auth: stores authenticator method reference claims for multi factor authentication';
DO $$
DECLARE
  c record;
BEGIN
  FOR c IN SELECT * FROM (VALUES
    ('users', 'instance_id', 'Auth: the GoTrue instance (all-zero uuid on a single-tenant GoTrue).'),
    ('users', 'id', 'Auth: the user id, the `sub` claim and auth.uid().'),
    ('users', 'aud', 'Auth: audience of the user''s tokens (`authenticated`).'),
    ('users', 'role', 'Auth: Postgres role the user''s tokens carry (`authenticated`).'),
    ('users', 'email', 'Auth: the user''s email address, lower case.'),
    ('users', 'encrypted_password', 'Auth: bcrypt hash of the password (cost 10), never the password.'),
    ('users', 'email_confirmed_at', 'Auth: when the email address was confirmed.'),
    ('users', 'invited_at', 'Auth: when the user was invited.'),
    ('users', 'confirmation_token', 'Auth: pending sign-up confirmation token (empty when none).'),
    ('users', 'confirmation_sent_at', 'Auth: when the confirmation message was sent.'),
    ('users', 'recovery_token', 'Auth: pending password recovery token (empty when none).'),
    ('users', 'recovery_sent_at', 'Auth: when the recovery message was sent.'),
    ('users', 'email_change_token_new', 'Auth: token confirming a new email address.'),
    ('users', 'email_change', 'Auth: the email address the user is changing to.'),
    ('users', 'email_change_sent_at', 'Auth: when the email change message was sent.'),
    ('users', 'last_sign_in_at', 'Auth: last successful sign-in.'),
    ('users', 'raw_app_meta_data', 'Auth: app_metadata (provider, providers, and what the service role sets).'),
    ('users', 'raw_user_meta_data', 'Auth: user_metadata (what the user may set).'),
    ('users', 'is_super_admin', 'Auth: unused by GoTrue v2.'),
    ('users', 'created_at', 'Auth: when the user was created.'),
    ('users', 'updated_at', 'Auth: when the user was last changed.'),
    ('users', 'phone', 'Auth: the user''s phone number.'),
    ('users', 'phone_confirmed_at', 'Auth: when the phone number was confirmed.'),
    ('users', 'phone_change', 'Auth: the phone number the user is changing to.'),
    ('users', 'phone_change_token', 'Auth: token confirming a new phone number.'),
    ('users', 'phone_change_sent_at', 'Auth: when the phone change message was sent.'),
    ('users', 'confirmed_at', 'Auth: generated, the earlier of email_confirmed_at and phone_confirmed_at.'),
    ('users', 'email_change_token_current', 'Auth: token confirming the change from the current address.'),
    ('users', 'email_change_confirm_status', 'Auth: 0-2, how many sides of an email change are confirmed.'),
    ('users', 'banned_until', 'Auth: the user cannot sign in or refresh until then.'),
    ('users', 'reauthentication_token', 'Auth: pending reauthentication token.'),
    ('users', 'reauthentication_sent_at', 'Auth: when the reauthentication message was sent.'),
    ('users', 'is_sso_user', 'Auth: Set this column to true when the account comes from SSO. These accounts can have duplicate emails.'),
    ('users', 'deleted_at', 'Auth: set when the user was soft-deleted.'),
    ('users', 'is_anonymous', 'Auth: true for anonymous sign-ins.'),
    ('identities', 'provider_id', 'Auth: the user''s id at the provider (the user id for the email provider).'),
    ('identities', 'user_id', 'Auth: the user this identity belongs to.'),
    ('identities', 'identity_data', 'Auth: what the provider says about the user (sub, email, email_verified, ...).'),
    ('identities', 'provider', 'Auth: the provider name (`email`).'),
    ('identities', 'last_sign_in_at', 'Auth: last sign-in through this identity.'),
    ('identities', 'created_at', 'Auth: when the identity was created.'),
    ('identities', 'updated_at', 'Auth: when the identity was last changed.'),
    ('identities', 'email', 'Auth: Email is a generated column that references the optional email property in the identity_data'),
    ('identities', 'id', 'Auth: the identity''s own id.'),
    ('sessions', 'id', 'Auth: the session id, the `session_id` claim.'),
    ('sessions', 'user_id', 'Auth: the signed-in user.'),
    ('sessions', 'created_at', 'Auth: when the session began (the sign-in).'),
    ('sessions', 'updated_at', 'Auth: when the session was last changed.'),
    ('sessions', 'factor_id', 'Auth: the MFA factor that raised the session to aal2, if any.'),
    ('sessions', 'aal', 'Auth: the session''s authenticator assurance level.'),
    ('sessions', 'not_after', 'Auth: Not after is a nullable column that contains a timestamp after which the session should be regarded as expired.'),
    ('sessions', 'refreshed_at', 'Auth: when a refresh token of the session was last exchanged.'),
    ('sessions', 'user_agent', 'Auth: User-Agent of the sign-in request.'),
    ('sessions', 'ip', 'Auth: client address of the sign-in request.'),
    ('sessions', 'tag', 'Auth: free-form tag.'),
    ('refresh_tokens', 'instance_id', 'Auth: the GoTrue instance.'),
    ('refresh_tokens', 'id', 'Auth: row id.'),
    ('refresh_tokens', 'token', 'Auth: the opaque refresh token.'),
    ('refresh_tokens', 'user_id', 'Auth: the user id, as text.'),
    ('refresh_tokens', 'revoked', 'Auth: true once exchanged for a newer token or signed out.'),
    ('refresh_tokens', 'created_at', 'Auth: when the token was issued.'),
    ('refresh_tokens', 'updated_at', 'Auth: when the token was last changed (revoked).'),
    ('refresh_tokens', 'parent', 'Auth: the token this one replaced.'),
    ('refresh_tokens', 'session_id', 'Auth: the session the token belongs to.'),
    ('mfa_amr_claims', 'session_id', 'Auth: the session.'),
    ('mfa_amr_claims', 'created_at', 'Auth: when the method was used (the amr timestamp).'),
    ('mfa_amr_claims', 'updated_at', 'Auth: when the row was last changed.'),
    ('mfa_amr_claims', 'authentication_method', 'Auth: the method (`password`, `totp`, ...).'),
    ('mfa_amr_claims', 'id', 'Auth: row id.')
  ) AS t (tbl, col, txt) LOOP
    EXECUTE format('COMMENT ON COLUMN auth.%I.%I IS %L', c.tbl, c.col, c.txt);
  END LOOP;
END
$$;
