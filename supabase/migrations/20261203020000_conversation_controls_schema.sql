-- Why: operators now work with the bot instead of after it (issue 11). The database holds every control
-- so that the listener, delivery and any Supabase client obey the same rows under the same locks:
--   * conversations learn a bot mode (auto / draft / off), a status (open / resolved), an assignee, a
--     pause (operator replies pause the bot), a control_version that every operator intervention bumps
--     (the completing RPC compares it with the one seen at claim time: that is the fence), and the
--     console's inbox fields (last message preview, unread count) kept by triggers in the writing
--     transaction, so Realtime's postgres_changes shows them;
--   * replies stay the ONE table delivery leases from, and learn who wrote them (bot + model, operator,
--     handoff notice), whether they are drafts (held, never leased), approved (with the original text
--     kept) or discarded, and who re-sent a failed one;
--   * messages learn which reply answers them (reply_id: every message of a burst points at one reply)
--     and a 'draft' state (the bot's answer waits for an operator);
--   * new tables: bot_settings (one row: the deployment's default mode, the auto-pause rule, the handoff
--     notice switch), categories (what the model may answer and how), handoff_messages (per language),
--     notes (private, never delivered, never in the model's context: the context query reads messages
--     only), model_prices (for the cost view).
-- The default mode lives in a table, not in an intake_message parameter: it is a business decision that
-- admins change from the console (RLS: admins only) and it takes effect for the next new conversation
-- without restarting or reconfiguring the API; Realtime shows the change to every console.

-- Settings: exactly one row (id is always true).
create table public.bot_settings (
  id boolean primary key default true constraint bot_settings_single_row check (id),
  default_bot_mode text not null default 'auto'
    constraint bot_settings_default_bot_mode_check check (default_bot_mode in ('auto', 'draft', 'off')),
  auto_pause text not null default 'until_handback'
    constraint bot_settings_auto_pause_check check (auto_pause in ('off', 'minutes', 'until_handback')),
  auto_pause_minutes integer not null default 30
    constraint bot_settings_auto_pause_minutes_between_1_and_10080 check (auto_pause_minutes between 1 and 10080),
  handoff_message_enabled boolean not null default true,
  updated_at timestamptz not null default now()
);
comment on table public.bot_settings is 'The deployment''s conversation controls (one row; admins edit it): default bot mode, auto-pause rule, handoff notice switch.';
comment on column public.bot_settings.id is 'Always true: the table holds one row.';
comment on column public.bot_settings.default_bot_mode is 'The bot mode a NEW conversation starts in: auto (answer and send), draft (answer, wait for approval) or off.';
comment on column public.bot_settings.auto_pause is 'What an operator''s reply does to the bot in that conversation: off (nothing), minutes (pause for auto_pause_minutes), until_handback (pause until an operator hands back).';
comment on column public.bot_settings.auto_pause_minutes is 'The pause length when auto_pause = minutes (1 minute to 7 days).';
comment on column public.bot_settings.handoff_message_enabled is 'When the bot hands a conversation to a person, send the customer the handoff message of their language.';
comment on column public.bot_settings.updated_at is 'When the settings last changed.';
insert into public.bot_settings default values;

create function public.default_bot_mode() returns text
language sql stable security definer set search_path = ''
as $$ select coalesce((select s.default_bot_mode from public.bot_settings s where s.id), 'auto') $$;
comment on function public.default_bot_mode() is 'The deployment''s default bot mode (bot_settings), used as conversations.bot_mode''s default.';
revoke all on function public.default_bot_mode() from public, anon;
grant execute on function public.default_bot_mode() to authenticated, service_role;

create function public.max_text_chars() returns integer
language sql immutable security invoker set search_path = ''
as $$ select 4000 $$;
comment on function public.max_text_chars() is 'The longest reply, draft edit or note an operator may write: the API''s MAX_CONTENT_CHARS default and the model''s MAX_REPLY_CHARS (4000).';
grant execute on function public.max_text_chars() to authenticated, service_role;

-- Conversations: the controls and the inbox fields.
alter table public.conversations
  add column bot_mode text not null default public.default_bot_mode()
    constraint conversations_bot_mode_check check (bot_mode in ('auto', 'draft', 'off')),
  add column resume_mode text constraint conversations_resume_mode_check check (resume_mode in ('auto', 'draft')),
  add column status text not null default 'open' constraint conversations_status_check check (status in ('open', 'resolved')),
  add column assignee_id uuid references public.operators (user_id) on delete set null,
  add column bot_paused_at timestamptz,
  add column bot_paused_until timestamptz,
  add column handed_off_at timestamptz,
  add column resolved_at timestamptz,
  add column control_version bigint not null default 0,
  add column last_message_at timestamptz,
  add column last_message_preview text,
  add column last_message_direction text
    constraint conversations_last_message_direction_check check (last_message_direction in ('inbound', 'outbound')),
  add column unread_count integer not null default 0,
  add constraint conversations_pause_has_a_start check (bot_paused_until is null or bot_paused_at is not null);
comment on column public.conversations.bot_mode is 'What the bot does now: auto (answer and send), draft (answer, store a draft for approval), off (no model call; messages wait for a person). Starts as bot_settings.default_bot_mode; a takeover or a handoff sets off.';
comment on column public.conversations.resume_mode is 'The mode hand_back restores after a takeover or a handoff (null: the deployment default).';
comment on column public.conversations.status is 'open or resolved; a new customer message reopens a resolved conversation.';
comment on column public.conversations.assignee_id is 'The operator responsible for the conversation, if any.';
comment on column public.conversations.bot_paused_at is 'When an operator reply paused the bot (null: not paused).';
comment on column public.conversations.bot_paused_until is 'When the pause ends by itself; null with bot_paused_at set: paused until handed back.';
comment on column public.conversations.handed_off_at is 'When the bot handed the conversation to a person (null once handed back).';
comment on column public.conversations.resolved_at is 'When the conversation was last resolved.';
comment on column public.conversations.control_version is 'Bumped by every change to the bot''s controls and every operator reply; the completing RPC discards a bot answer whose claim saw an older version (the fence).';
comment on column public.conversations.last_message_at is 'When the latest message (either direction) was written.';
comment on column public.conversations.last_message_preview is 'The first 140 characters of the latest message, for the inbox.';
comment on column public.conversations.last_message_direction is 'inbound (the customer spoke last) or outbound (the bot or an operator did).';
comment on column public.conversations.unread_count is 'Customer messages since the business (bot or operator) last wrote in this conversation.';
create index conversations_assignee_id on public.conversations (assignee_id) where assignee_id is not null;
create index conversations_inbox on public.conversations (status, last_message_at desc);

update public.conversations c set
  last_message_at = l.created_at, last_message_preview = left(l.content, 140), last_message_direction = l.direction
from (select distinct on (m.conversation_id) m.conversation_id, m.created_at, m.content, m.direction
      from public.messages m order by m.conversation_id, m.created_at desc, m.id desc) l
where l.conversation_id = c.id;

-- Replies: authorship, drafts and re-sends.
alter table public.replies drop constraint replies_message_id_key;
alter table public.replies drop constraint replies_delivery_state_check;
alter table public.replies
  alter column model drop not null,
  add constraint replies_delivery_state_check
    check (delivery_state in ('held', 'pending', 'delivering', 'retrying', 'delivered', 'failed', 'stopped')),
  add column kind text not null default 'bot'
    constraint replies_kind_check check (kind in ('bot', 'operator', 'handoff_notice')),
  add column status text not null default 'sent'
    constraint replies_status_check check (status in ('sent', 'draft', 'approved', 'discarded')),
  add column outcome text constraint replies_outcome_check check (outcome in ('sent', 'draft', 'handoff', 'discarded')),
  add column author_id uuid references auth.users (id) on delete set null,
  add column client_request_id text constraint replies_client_request_id_length check (char_length(client_request_id) between 1 and 128),
  add column original_content text,
  add column approved_by uuid references auth.users (id) on delete set null,
  add column approved_at timestamptz,
  add column discarded_by uuid references auth.users (id) on delete set null,
  add column discarded_at timestamptz,
  add column discard_reason text constraint replies_discard_reason_check check (discard_reason in ('operator', 'superseded', 'takeover')),
  add column resent_by uuid references auth.users (id) on delete set null,
  add column resent_at timestamptz,
  add column resend_count integer not null default 0,
  add column control_version bigint,
  -- The delivery lease takes delivery_state pending/delivering/retrying only: a draft or a discarded
  -- reply is always held, so it can never be leased.
  add constraint replies_drafts_are_held check ((status in ('draft', 'discarded')) = (delivery_state = 'held')),
  -- An operator reply's author_id may become null: deleting the auth user keeps the history.
  add constraint replies_bot_replies_name_a_model check (kind <> 'bot' or model is not null);
comment on column public.replies.message_id is 'The inbound message answered (bot replies: the first message of the burst; operator replies: the latest customer message when it was written).';
comment on column public.replies.model is 'The model that wrote it (bot replies); null for operator replies and handoff notices.';
comment on column public.replies.delivery_state is 'held (a draft or a discarded answer: never delivered) | pending -> delivering -> delivered | retrying | failed (attempts exhausted or blocked) | stopped (410 Gone).';
comment on column public.replies.kind is 'Who wrote it: bot (the model), operator (author_id), handoff_notice (the configured handoff message).';
comment on column public.replies.status is 'sent (written to be delivered), draft (waits for an operator), approved (a draft an operator approved, maybe edited), discarded (never delivered).';
comment on column public.replies.outcome is 'Bot replies: what the completing RPC decided: sent, draft, handoff (bot off; this answer kept as a draft) or discarded (an operator acted while the model was answering).';
comment on column public.replies.author_id is 'Operator replies: the operator who wrote it.';
comment on column public.replies.client_request_id is 'The operator client''s request id: a retried send_reply with the same id returns this reply.';
comment on column public.replies.original_content is 'When an operator approved an edited draft: the model''s original text (content holds the edit).';
comment on column public.replies.approved_by is 'The operator who approved the draft.';
comment on column public.replies.approved_at is 'When the draft was approved (its delivery starts then).';
comment on column public.replies.discarded_by is 'The operator who discarded the draft (null when discarded by the fence).';
comment on column public.replies.discarded_at is 'When it was discarded.';
comment on column public.replies.discard_reason is 'operator (discarded by hand), superseded (an operator replied while it waited), takeover (an operator took over or replied while the model was answering).';
comment on column public.replies.resent_by is 'The operator who last re-sent it after its delivery failed for good.';
comment on column public.replies.resent_at is 'When it was last re-sent.';
comment on column public.replies.resend_count is 'How many times an operator re-sent it.';
comment on column public.replies.control_version is 'The conversation''s control_version when the reply was written (the fence''s witness).';
-- One live bot answer per message: the completing RPC's idempotency. A discarded answer does not count:
-- after a takeover and a hand-back the message is claimed and answered again.
create unique index replies_one_bot_reply_per_message on public.replies (message_id)
  where kind = 'bot' and status <> 'discarded';
create index replies_message_id on public.replies (message_id);
create unique index replies_client_request_id on public.replies (author_id, client_request_id)
  where client_request_id is not null;
create index replies_drafts on public.replies (conversation_id) where status = 'draft';
create index replies_created_at on public.replies (created_at);

-- Messages: the answering reply, drafts, claim-time version.
alter table public.messages drop constraint messages_state_check;
alter table public.messages
  add constraint messages_state_check check (state in ('pending', 'processing', 'answered', 'draft', 'handoff', 'failed')),
  add column reply_id uuid references public.replies (id) on delete set null,
  add column claimed_at timestamptz,
  add column claim_version bigint;
comment on column public.messages.state is 'Inbound only: pending -> processing -> answered | draft (the bot''s answer waits for approval) | handoff | failed. pending also means "waiting for a person" while the conversation''s bot is off or paused.';
comment on column public.messages.reply_id is 'Inbound: the reply that answers it (every message of a burst points at the same one); for a draft, the draft.';
comment on column public.messages.claimed_at is 'When a worker last claimed it.';
comment on column public.messages.claim_version is 'The conversation''s control_version at the last claim (compared by the completing RPC).';
create index messages_reply_id on public.messages (reply_id) where reply_id is not null;
-- send_reply / hand_back: a conversation's messages waiting for a person.
create index messages_conversation_waiting on public.messages (conversation_id)
  where direction = 'inbound' and state in ('pending', 'draft');
update public.messages m set reply_id = r.id from public.replies r where r.message_id = m.id and m.reply_id is null;

-- Categories the business owns.
create table public.categories (
  id bigint generated always as identity primary key,
  name text not null constraint categories_name_unique unique
    constraint categories_name_is_a_snake_case_label check (name ~ '^[a-z][a-z0-9_]{0,47}$'),
  description text not null default '' constraint categories_description_length check (char_length(description) <= 500),
  examples text[] not null default '{}'
    constraint categories_examples_at_most_10 check (coalesce(array_length(examples, 1), 0) <= 10),
  action text not null default 'auto' constraint categories_action_check check (action in ('auto', 'draft', 'handoff')),
  min_confidence real not null default 0
    constraint categories_min_confidence_between_0_and_1 check (min_confidence between 0 and 1),
  handoff_urgency text constraint categories_handoff_urgency_check check (handoff_urgency in ('low', 'normal', 'high', 'critical')),
  active boolean not null default true,
  position integer not null default 0,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now()
);
comment on table public.categories is 'The categories the model chooses from, and what the bot may do with each (admins edit them through the Data API).';
comment on column public.categories.id is 'Category id.';
comment on column public.categories.name is 'The label the model answers with (snake_case, unique).';
comment on column public.categories.description is 'What the category means, as the model is told.';
comment on column public.categories.examples is 'Example customer messages for the model (at most 10).';
comment on column public.categories.action is 'auto: send the answer; draft: store it for approval; handoff: hand the conversation to a person.';
comment on column public.categories.min_confidence is 'Below this confidence (0..1) an auto answer becomes a draft.';
comment on column public.categories.handoff_urgency is 'An urgency at or above this level forces a handoff (null: never).';
comment on column public.categories.active is 'Inactive categories are not offered to the model.';
comment on column public.categories.position is 'Order in which the categories are offered.';
comment on column public.categories.created_at is 'When the category was added.';
comment on column public.categories.updated_at is 'When the category last changed.';
-- Seeded from config.DEFAULT_CATEGORIES with today's behaviour: every category answers automatically,
-- no confidence threshold, no urgency rule (needs_human alone hands off).
insert into public.categories (name, description, position) values
  ('sales', 'Wants to buy, or asks about products and availability.', 1),
  ('pricing', 'Asks about prices, plans, discounts or quotes.', 2),
  ('order_status', 'Asks where an order is or when it arrives.', 3),
  ('technical_support', 'Something does not work or they need help using the product.', 4),
  ('billing', 'Invoices, payments, charges and payment methods.', 5),
  ('refund', 'Wants money back or to return something.', 6),
  ('complaint', 'Is unhappy with the product or the service.', 7),
  ('feedback', 'Gives an opinion or a suggestion.', 8),
  ('greeting', 'Says hello or thanks, with no request yet.', 9),
  ('other', 'Anything else.', 10);

-- Handoff notices per language.
create table public.handoff_messages (
  language text primary key constraint handoff_messages_language_is_iso_639_1 check (language ~ '^[a-z]{2}$'),
  content text not null constraint handoff_messages_content_length check (char_length(btrim(content)) between 1 and 4000),
  active boolean not null default true,
  updated_at timestamptz not null default now()
);
comment on table public.handoff_messages is 'What the customer is told, in their language, when the bot hands the conversation to a person (see bot_settings.handoff_message_enabled).';
comment on column public.handoff_messages.language is 'ISO 639-1 code, as classifications.language.';
comment on column public.handoff_messages.content is 'The notice text.';
comment on column public.handoff_messages.active is 'false: no notice in this language (the model''s own reply is sent instead).';
comment on column public.handoff_messages.updated_at is 'When the notice last changed.';
insert into public.handoff_messages (language, content) values
  ('en', 'Thank you! A colleague will look at your message and answer you here shortly.'),
  ('ru', 'Спасибо! Коллега посмотрит ваше сообщение и скоро ответит вам здесь.');

-- Private notes.
create table public.notes (
  id uuid primary key default gen_random_uuid(),
  conversation_id uuid not null references public.conversations (id) on delete cascade,
  author_id uuid not null default auth.uid() references auth.users (id) on delete cascade,
  body text not null constraint notes_body_length check (char_length(btrim(body)) between 1 and 4000),
  client_request_id text constraint notes_client_request_id_length check (char_length(client_request_id) between 1 and 128),
  created_at timestamptz not null default now()
);
comment on table public.notes is 'Operators'' private notes on a conversation: shown to operators, never delivered, never sent to the model.';
comment on column public.notes.id is 'Note id.';
comment on column public.notes.conversation_id is 'The conversation.';
comment on column public.notes.author_id is 'The operator who wrote it.';
comment on column public.notes.body is 'The note (1 to 4000 characters).';
comment on column public.notes.client_request_id is 'The operator client''s request id: a retried add_note returns this note.';
comment on column public.notes.created_at is 'When the note was written.';
create index notes_conversation_id on public.notes (conversation_id, created_at);
create unique index notes_client_request_id on public.notes (author_id, client_request_id) where client_request_id is not null;

-- Prices for the cost view.
create table public.model_prices (
  model text primary key constraint model_prices_model_length check (char_length(model) between 1 and 128),
  input_usd_per_million numeric(12, 6) not null
    constraint model_prices_input_not_negative check (input_usd_per_million >= 0),
  output_usd_per_million numeric(12, 6) not null
    constraint model_prices_output_not_negative check (output_usd_per_million >= 0),
  updated_at timestamptz not null default now()
);
comment on table public.model_prices is 'What a model costs per million tokens (admins keep it current); analytics_model_usage_daily multiplies by it.';
comment on column public.model_prices.model is 'The model name as classifications.model stores it.';
comment on column public.model_prices.input_usd_per_million is 'USD per million input (prompt) tokens.';
comment on column public.model_prices.output_usd_per_million is 'USD per million output (completion) tokens.';
comment on column public.model_prices.updated_at is 'When the price last changed.';
insert into public.model_prices (model, input_usd_per_million, output_usd_per_million) values
  ('gpt-4o-mini', 0.15, 0.60),
  ('offline-rules-v1', 0, 0);

-- Triggers ---------------------------------------------------------------------------------------

create function public.touch_updated_at() returns trigger
language plpgsql security invoker set search_path = ''
as $$
begin
  new.updated_at := now();
  return new;
end
$$;
comment on function public.touch_updated_at() is 'Trigger: keeps updated_at current on every update.';
revoke all on function public.touch_updated_at() from public, anon, authenticated;
create trigger bot_settings_touch_updated_at before update on public.bot_settings
  for each row execute function public.touch_updated_at();
create trigger categories_touch_updated_at before update on public.categories
  for each row execute function public.touch_updated_at();
create trigger handoff_messages_touch_updated_at before update on public.handoff_messages
  for each row execute function public.touch_updated_at();
create trigger model_prices_touch_updated_at before update on public.model_prices
  for each row execute function public.touch_updated_at();

-- control_version only ever moves forward, by one per change, whatever a caller writes into it: a change
-- to the bot's controls bumps it, and an RPC that must fence the bot without changing a control (an
-- operator reply with auto-pause off) asks for a bump by writing any other value.
create function public.conversations_control_version() returns trigger
language plpgsql security invoker set search_path = ''
as $$
begin
  if new.control_version is distinct from old.control_version
     or new.bot_mode is distinct from old.bot_mode
     or new.bot_paused_at is distinct from old.bot_paused_at
     or new.bot_paused_until is distinct from old.bot_paused_until then
    new.control_version := old.control_version + 1;
  end if;
  return new;
end
$$;
comment on function public.conversations_control_version() is 'Trigger: bumps conversations.control_version by one on any change to the bot''s mode or pause or on request; never lets it go back.';
revoke all on function public.conversations_control_version() from public, anon, authenticated;
create trigger conversations_control_version before update on public.conversations
  for each row execute function public.conversations_control_version();

-- Security definer: an operator's send_reply inserts an outbound message, and the inbox fields it moves
-- are not columns an operator may write.
create function public.messages_update_inbox() returns trigger
language plpgsql security definer set search_path = ''
as $$
begin
  update public.conversations c
  set last_message_at = new.created_at,
      last_message_preview = left(new.content, 140),
      last_message_direction = new.direction,
      unread_count = case when new.direction = 'inbound' then c.unread_count + 1 else 0 end,
      status = case when new.direction = 'inbound' then 'open' else c.status end
  where c.id = new.conversation_id;
  return null;
end
$$;
comment on function public.messages_update_inbox() is 'Trigger: a new message updates its conversation''s preview and unread count (and a customer message reopens it) in the same transaction, so Realtime shows them.';
revoke all on function public.messages_update_inbox() from public, anon, authenticated;
create trigger messages_update_inbox after insert on public.messages
  for each row execute function public.messages_update_inbox();

-- Grants and RLS ------------------------------------------------------------------------------------

revoke all on public.bot_settings, public.categories, public.handoff_messages, public.notes, public.model_prices
  from anon, authenticated, public;
grant select, insert, update, delete on public.bot_settings, public.categories, public.handoff_messages, public.notes,
  public.model_prices to service_role;
grant select on public.bot_settings, public.categories, public.handoff_messages, public.notes, public.model_prices
  to authenticated;
grant update (default_bot_mode, auto_pause, auto_pause_minutes, handoff_message_enabled) on public.bot_settings
  to authenticated;
grant insert (name, description, examples, action, min_confidence, handoff_urgency, active, position),
  update (name, description, examples, action, min_confidence, handoff_urgency, active, position), delete
  on public.categories to authenticated;
grant insert (language, content, active), update (content, active), delete on public.handoff_messages to authenticated;
grant insert (model, input_usd_per_million, output_usd_per_million),
  update (input_usd_per_million, output_usd_per_million), delete on public.model_prices to authenticated;
-- The operator RPCs run as the operator (security invoker): these are the writes they make, and RLS
-- below limits them to active operators and to the transitions the RPCs perform.
grant insert (conversation_id, author_id, body, client_request_id) on public.notes to authenticated;
grant update (bot_mode, resume_mode, status, assignee_id, bot_paused_at, bot_paused_until, handed_off_at, resolved_at,
  control_version, updated_at) on public.conversations to authenticated;
grant insert (conversation_id, client_id, direction, content, reply_to) on public.messages to authenticated;
grant update (state, reply_id, finished_at, updated_at) on public.messages to authenticated;
grant insert (message_id, conversation_id, outbound_message_id, content, kind, status, author_id, client_request_id,
  control_version, delivery_state, next_attempt_at) on public.replies to authenticated;
grant update (content, status, outbound_message_id, original_content, approved_by, approved_at, discarded_by,
  discarded_at, discard_reason, resent_by, resent_at, resend_count, delivery_state, delivery_attempts, next_attempt_at,
  last_delivery_error, last_status_code, control_version, updated_at) on public.replies to authenticated;

alter table public.bot_settings enable row level security;
alter table public.categories enable row level security;
alter table public.handoff_messages enable row level security;
alter table public.notes enable row level security;
alter table public.model_prices enable row level security;

create policy "operators read the bot settings" on public.bot_settings for select to authenticated
  using ((select public.is_operator()));
create policy "admins change the bot settings" on public.bot_settings for update to authenticated
  using ((select public.is_admin())) with check ((select public.is_admin()));

create policy "operators read categories" on public.categories for select to authenticated
  using ((select public.is_operator()));
create policy "admins add categories" on public.categories for insert to authenticated
  with check ((select public.is_admin()));
create policy "admins change categories" on public.categories for update to authenticated
  using ((select public.is_admin())) with check ((select public.is_admin()));
create policy "admins remove categories" on public.categories for delete to authenticated
  using ((select public.is_admin()));

create policy "operators read handoff messages" on public.handoff_messages for select to authenticated
  using ((select public.is_operator()));
create policy "admins add handoff messages" on public.handoff_messages for insert to authenticated
  with check ((select public.is_admin()));
create policy "admins change handoff messages" on public.handoff_messages for update to authenticated
  using ((select public.is_admin())) with check ((select public.is_admin()));
create policy "admins remove handoff messages" on public.handoff_messages for delete to authenticated
  using ((select public.is_admin()));

create policy "operators read model prices" on public.model_prices for select to authenticated
  using ((select public.is_operator()));
create policy "admins add model prices" on public.model_prices for insert to authenticated
  with check ((select public.is_admin()));
create policy "admins change model prices" on public.model_prices for update to authenticated
  using ((select public.is_admin())) with check ((select public.is_admin()));
create policy "admins remove model prices" on public.model_prices for delete to authenticated
  using ((select public.is_admin()));

create policy "operators read notes" on public.notes for select to authenticated
  using ((select public.is_operator()));
create policy "operators write their own notes" on public.notes for insert to authenticated
  with check ((select public.is_operator()) and author_id = (select auth.uid()));

create policy "operators change conversation controls" on public.conversations for update to authenticated
  using ((select public.is_operator())) with check ((select public.is_operator()));
create policy "operators write outbound messages" on public.messages for insert to authenticated
  with check ((select public.is_operator()) and direction = 'outbound' and reply_to is not null);
create policy "operators answer waiting messages" on public.messages for update to authenticated
  using ((select public.is_operator()) and direction = 'inbound' and state in ('pending', 'draft'))
  with check ((select public.is_operator()) and state in ('answered', 'handoff'));
create policy "operators write their own replies" on public.replies for insert to authenticated
  with check ((select public.is_operator()) and kind = 'operator' and author_id = (select auth.uid())
              and status = 'sent' and delivery_state = 'pending');
-- Drafts (approve, edit, discard) and replies whose delivery failed for good (re-send): nothing else, and
-- the operator who decides signs the row (approved_by / discarded_by / resent_by).
create policy "operators decide drafts and re-send failed replies" on public.replies for update to authenticated
  using ((select public.is_operator()) and (status = 'draft' or delivery_state = 'failed'))
  with check ((select public.is_operator()) and delivery_state in ('held', 'pending')
              and case status
                    when 'approved' then approved_by = (select auth.uid()) or resent_by = (select auth.uid())
                    when 'discarded' then discarded_by = (select auth.uid())
                    when 'sent' then resent_by = (select auth.uid())
                    else false end);

-- Realtime: the console sees controls, drafts, notes and settings change live (RLS applies per event).
alter publication supabase_realtime add table public.notes, public.categories, public.bot_settings,
  public.handoff_messages;
