-- Why: the message pipeline keeps everything in Postgres. The messages table is also the work
-- queue (state + lease), because Realtime only wakes the listener and never replays what it missed.
-- RLS is on everywhere: service_role (the API and the listener) bypasses it, operators listed in
-- public.operators may read conversations, messages, classifications and replies, anon gets nothing.
-- Grants are explicit: Supabase no longer exposes new tables to the Data API by default.

create table public.clients (
  id text primary key check (char_length(id) between 1 and 128),
  created_at timestamptz not null default now()
);
comment on table public.clients is 'The businesses'' customers as the calling platform identifies them (client_id in POST /api/messages/).';
comment on column public.clients.id is 'The caller''s client_id, as sent; conversations and idempotency keys are scoped to it.';
comment on column public.clients.created_at is 'When the first message from this client arrived.';

create table public.conversations (
  id uuid primary key default gen_random_uuid(),
  client_id text not null references public.clients (id) on delete cascade,
  platform text not null check (platform ~ '^[a-z0-9_-]{1,32}$'),
  chat_id text not null check (char_length(chat_id) between 1 and 128),
  webhook_url text check (char_length(webhook_url) <= 2048),
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  unique (client_id, platform, chat_id)
);
comment on table public.conversations is 'One chat on one platform for one client; the model sees only this conversation''s history.';
comment on column public.conversations.id is 'Conversation id.';
comment on column public.conversations.client_id is 'The client this chat belongs to.';
comment on column public.conversations.platform is 'The chat platform (X-Platform), lower case: webhook, telegram, test, ...';
comment on column public.conversations.chat_id is 'The platform''s chat id (X-Chat-ID).';
comment on column public.conversations.webhook_url is 'Where replies are delivered (X-Webhook-URL of the latest message); null for platforms with their own API.';
comment on column public.conversations.created_at is 'When the first message of this chat arrived.';
comment on column public.conversations.updated_at is 'When the latest message of this chat arrived.';

create table public.messages (
  id uuid primary key default gen_random_uuid(),
  conversation_id uuid not null references public.conversations (id) on delete cascade,
  client_id text not null references public.clients (id) on delete cascade,
  direction text not null check (direction in ('inbound', 'outbound')),
  content text not null,
  state text check (state in ('pending', 'processing', 'answered', 'handoff', 'failed')),
  reply_to uuid references public.messages (id) on delete cascade,
  idempotency_key text check (char_length(idempotency_key) <= 255),
  platform_message_id text check (char_length(platform_message_id) <= 128),
  request_fingerprint text,
  lease_owner text,
  lease_expires_at timestamptz,
  attempts integer not null default 0,
  last_error text,
  -- clock_timestamp(), not now(): intake takes the conversation's row lock before inserting, so this
  -- orders a conversation's messages as they commit, which is the order they are answered in.
  created_at timestamptz not null default clock_timestamp(),
  updated_at timestamptz not null default now(),
  finished_at timestamptz,
  check ((direction = 'inbound') = (state is not null))
);
comment on table public.messages is 'Every message of every conversation: customers'' (inbound, a work item with a state) and the AI''s answers (outbound).';
comment on column public.messages.id is 'Message id (returned by POST /api/messages/).';
comment on column public.messages.conversation_id is 'The conversation the message belongs to.';
comment on column public.messages.client_id is 'The client (copied from the conversation, for idempotency and filtering).';
comment on column public.messages.direction is 'inbound: from the customer; outbound: the reply sent to the customer.';
comment on column public.messages.content is 'The text.';
comment on column public.messages.state is 'Inbound only: pending -> processing -> answered | handoff | failed.';
comment on column public.messages.reply_to is 'Outbound only: the inbound message this answers.';
comment on column public.messages.idempotency_key is 'The Idempotency-Key header: a retry with the same key returns this message.';
comment on column public.messages.platform_message_id is 'The platform''s own message id (Telegram update_id, or message_id in the request body); unique per conversation.';
comment on column public.messages.request_fingerprint is 'A hash of the accepted request, to tell a retry from a reused idempotency key.';
comment on column public.messages.lease_owner is 'The listener worker processing this message now.';
comment on column public.messages.lease_expires_at is 'After this, another worker may take the message over.';
comment on column public.messages.attempts is 'How many times a worker has claimed this message.';
comment on column public.messages.last_error is 'Why the message failed or was handed to a human (no message text).';
comment on column public.messages.created_at is 'When the message was accepted.';
comment on column public.messages.updated_at is 'When the row last changed.';
comment on column public.messages.finished_at is 'When the message reached answered, handoff or failed.';

create unique index messages_idempotency_key on public.messages (client_id, idempotency_key) where idempotency_key is not null;
create unique index messages_platform_message_id on public.messages (conversation_id, platform_message_id)
  where platform_message_id is not null;
-- claim_messages: the oldest unfinished inbound message of each conversation.
create index messages_queue on public.messages (conversation_id, created_at, id)
  where direction = 'inbound' and state in ('pending', 'processing');
-- claim_messages: expired leases.
create index messages_leases on public.messages (lease_expires_at) where state = 'processing';
-- The model's context: a conversation's recent messages.
create index messages_conversation_created on public.messages (conversation_id, created_at);
create index messages_client_id on public.messages (client_id);
create index messages_reply_to on public.messages (reply_to) where reply_to is not null;

create table public.classifications (
  id uuid primary key default gen_random_uuid(),
  message_id uuid not null unique references public.messages (id) on delete cascade,
  conversation_id uuid not null references public.conversations (id) on delete cascade,
  category text not null,
  intent text not null,
  sentiment text not null check (sentiment in ('positive', 'neutral', 'negative')),
  urgency text not null check (urgency in ('low', 'normal', 'high', 'critical')),
  language text not null,
  confidence real not null check (confidence between 0 and 1),
  needs_human boolean not null,
  model text not null,
  prompt_version text not null,
  prompt_tokens integer not null default 0,
  completion_tokens integer not null default 0,
  latency_ms integer not null default 0,
  created_at timestamptz not null default now()
);
comment on table public.classifications is 'The model''s reading of an inbound message, with the model and cost that produced it.';
comment on column public.classifications.id is 'Classification id.';
comment on column public.classifications.message_id is 'The inbound message classified (one classification per message).';
comment on column public.classifications.conversation_id is 'The message''s conversation.';
comment on column public.classifications.category is 'One of the configured categories (CATEGORIES).';
comment on column public.classifications.intent is 'What the customer wants, as a short snake_case label.';
comment on column public.classifications.sentiment is 'positive, neutral or negative.';
comment on column public.classifications.urgency is 'low, normal, high or critical.';
comment on column public.classifications.language is 'The message''s language (ISO 639-1); the reply uses it.';
comment on column public.classifications.confidence is 'The model''s confidence, 0 to 1.';
comment on column public.classifications.needs_human is 'The model asks for an operator to follow up.';
comment on column public.classifications.model is 'The model that answered (offline-rules-* when no OpenAI key is set).';
comment on column public.classifications.prompt_version is 'The version of the system prompt and schema used.';
comment on column public.classifications.prompt_tokens is 'Input tokens of the call.';
comment on column public.classifications.completion_tokens is 'Output tokens of the call.';
comment on column public.classifications.latency_ms is 'How long the model call took, in milliseconds.';
comment on column public.classifications.created_at is 'When the classification was stored.';
create index classifications_conversation_id on public.classifications (conversation_id);

create table public.replies (
  id uuid primary key default gen_random_uuid(),
  message_id uuid not null unique references public.messages (id) on delete cascade,
  conversation_id uuid not null references public.conversations (id) on delete cascade,
  outbound_message_id uuid references public.messages (id) on delete set null,
  content text not null,
  model text not null,
  delivery_state text not null default 'pending'
    check (delivery_state in ('pending', 'delivering', 'retrying', 'delivered', 'failed', 'stopped')),
  delivery_attempts integer not null default 0,
  next_attempt_at timestamptz default now(),
  delivery_lease_owner text,
  delivered_at timestamptz,
  last_delivery_error text,
  last_status_code integer,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now()
);
comment on table public.replies is 'The answer to an inbound message (at most one each) and the state of its delivery to the platform.';
comment on column public.replies.id is 'Reply id; also the webhook-id of every delivery attempt, so receivers can deduplicate.';
comment on column public.replies.message_id is 'The inbound message answered.';
comment on column public.replies.conversation_id is 'The conversation.';
comment on column public.replies.outbound_message_id is 'The outbound message row holding the same text in the conversation history.';
comment on column public.replies.content is 'The reply text, plain.';
comment on column public.replies.model is 'The model that wrote it.';
comment on column public.replies.delivery_state is 'pending -> delivering -> delivered | retrying | failed (attempts exhausted or blocked) | stopped (410 Gone).';
comment on column public.replies.delivery_attempts is 'Delivery attempts made so far.';
comment on column public.replies.next_attempt_at is 'When the next attempt is due (or, while delivering, when the lease on it expires).';
comment on column public.replies.delivery_lease_owner is 'The worker delivering it now.';
comment on column public.replies.delivered_at is 'When the platform accepted it.';
comment on column public.replies.last_delivery_error is 'Why the last attempt failed.';
comment on column public.replies.last_status_code is 'The HTTP status of the last attempt, if any.';
comment on column public.replies.created_at is 'When the reply was written.';
comment on column public.replies.updated_at is 'When the row last changed.';
create index replies_due on public.replies (next_attempt_at) where delivery_state in ('pending', 'delivering', 'retrying');
create index replies_conversation_id on public.replies (conversation_id);
create index replies_outbound_message_id on public.replies (outbound_message_id);

create table public.delivery_attempts (
  id bigint generated always as identity primary key,
  reply_id uuid not null references public.replies (id) on delete cascade,
  attempt integer not null,
  webhook_id text not null,
  outcome text not null check (outcome in ('delivered', 'retry', 'failed', 'stopped')),
  status_code integer,
  error text,
  duration_ms integer not null default 0,
  worker text not null,
  created_at timestamptz not null default now()
);
comment on table public.delivery_attempts is 'The delivery log: every attempt to deliver a reply, successful or not.';
comment on column public.delivery_attempts.id is 'Log entry id.';
comment on column public.delivery_attempts.reply_id is 'The reply delivered.';
comment on column public.delivery_attempts.attempt is 'Attempt number, from 1.';
comment on column public.delivery_attempts.webhook_id is 'The webhook-id header sent (the same on every attempt of a reply).';
comment on column public.delivery_attempts.outcome is 'delivered, retry (will try again), failed (for good) or stopped (410 Gone).';
comment on column public.delivery_attempts.status_code is 'The receiver''s HTTP status, when it answered.';
comment on column public.delivery_attempts.error is 'What went wrong (timeouts, refused connections, blocked destinations).';
comment on column public.delivery_attempts.duration_ms is 'How long the attempt took, in milliseconds.';
comment on column public.delivery_attempts.worker is 'The listener worker that made the attempt.';
comment on column public.delivery_attempts.created_at is 'When the attempt ended.';
create index delivery_attempts_reply_id on public.delivery_attempts (reply_id, attempt);

create table public.operators (
  user_id uuid primary key,
  display_name text,
  created_at timestamptz not null default now()
);
comment on table public.operators is 'Supabase Auth users allowed to watch conversations (Studio or a console, through RLS).';
comment on column public.operators.user_id is 'The auth user id (auth.uid() in policies).';
comment on column public.operators.display_name is 'A name to show.';
comment on column public.operators.created_at is 'When the user became an operator.';

-- Deny by default: the API roles get exactly what they need.
revoke all on public.clients, public.conversations, public.messages, public.classifications, public.replies,
  public.delivery_attempts, public.operators from anon, authenticated, public;
grant select, insert, update, delete on public.clients, public.conversations, public.messages, public.classifications,
  public.replies, public.delivery_attempts, public.operators to service_role;
grant usage, select on sequence public.delivery_attempts_id_seq to service_role;
grant select on public.conversations, public.messages, public.classifications, public.replies, public.operators
  to authenticated;

alter table public.clients enable row level security;
alter table public.conversations enable row level security;
alter table public.messages enable row level security;
alter table public.classifications enable row level security;
alter table public.replies enable row level security;
alter table public.delivery_attempts enable row level security;
alter table public.operators enable row level security;

create policy "operators see themselves" on public.operators for select to authenticated
  using (user_id = (select auth.uid()));
create policy "operators read conversations" on public.conversations for select to authenticated
  using (exists (select 1 from public.operators o where o.user_id = (select auth.uid())));
create policy "operators read messages" on public.messages for select to authenticated
  using (exists (select 1 from public.operators o where o.user_id = (select auth.uid())));
create policy "operators read classifications" on public.classifications for select to authenticated
  using (exists (select 1 from public.operators o where o.user_id = (select auth.uid())));
create policy "operators read replies" on public.replies for select to authenticated
  using (exists (select 1 from public.operators o where o.user_id = (select auth.uid())));

alter publication supabase_realtime add table public.conversations, public.messages, public.classifications,
  public.replies;
