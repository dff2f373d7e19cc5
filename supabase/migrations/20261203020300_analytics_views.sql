-- Why: Studio and the console need the figures a business runs its inbox by (issue 11, item 6), read
-- with the operator's own token. They are views with security_invoker = true, so the caller's RLS applies
-- (operators read them, anon reads nothing) and nothing is copied or scheduled: each read computes
-- from the rows. Days are UTC calendar days. message_outcomes is the one definition of "what happened
-- to a customer message" that the other views share.

create view public.message_outcomes with (security_invoker = true) as
select
  m.id as message_id,
  m.conversation_id,
  v.platform,
  m.created_at,
  (m.created_at at time zone 'UTC')::date as day,
  k.category,
  case
    when m.state = 'failed' then 'failed'
    when m.state = 'handoff' then 'handoff'
    when m.state = 'answered' and r.kind = 'operator' then 'operator_reply'
    when m.state = 'answered' and r.status = 'approved' then 'approved_draft'
    when m.state = 'answered' then 'bot'
    else 'waiting'
  end as outcome
from public.messages m
join public.conversations v on v.id = m.conversation_id
left join public.replies r on r.id = m.reply_id
-- A burst's messages share the classification of the message their bot reply names.
left join public.classifications k
  on k.message_id = coalesce(case when r.kind <> 'operator' then r.message_id end, m.id)
where m.direction = 'inbound';
comment on view public.message_outcomes is 'Every customer message with its category and outcome: bot (answered by the bot), approved_draft, operator_reply, handoff, failed, or waiting (not finished yet).';

create view public.analytics_messages_daily with (security_invoker = true) as
select o.day, o.category, o.platform, o.outcome, count(*)::integer as messages
from public.message_outcomes o
group by o.day, o.category, o.platform, o.outcome;
comment on view public.analytics_messages_daily is 'Customer messages per UTC day by category, platform and outcome (bot, approved_draft, operator_reply, handoff, failed, waiting).';

create view public.analytics_auto_resolve_daily with (security_invoker = true) as
select o.day, o.platform,
       count(*) filter (where o.outcome <> 'waiting')::integer as finished,
       count(*) filter (where o.outcome = 'bot')::integer as by_bot,
       (count(*) filter (where o.outcome = 'bot'))::double precision
         / nullif(count(*) filter (where o.outcome <> 'waiting'), 0) as auto_resolve_rate
from public.message_outcomes o
group by o.day, o.platform;
comment on view public.analytics_auto_resolve_daily is 'Bot auto-resolve rate per UTC day and platform: finished customer messages the bot answered on its own (no draft, operator or handoff) / all finished ones.';

create view public.analytics_first_response with (security_invoker = true) as
with conversations as (
  select m.conversation_id, min(m.created_at) as first_message_at
  from public.messages m where m.direction = 'inbound' group by m.conversation_id
), responses as (
  select c.conversation_id, c.first_message_at, 'bot'::text as responder, min(r.created_at) as responded_at
  from conversations c
  join public.replies r on r.conversation_id = c.conversation_id
  where r.kind in ('bot', 'handoff_notice') and r.status = 'sent'
  group by c.conversation_id, c.first_message_at
  union all
  select c.conversation_id, c.first_message_at, 'human', min(coalesce(r.approved_at, r.created_at))
  from conversations c
  join public.replies r on r.conversation_id = c.conversation_id
  where r.kind = 'operator' or r.status = 'approved'
  group by c.conversation_id, c.first_message_at
)
select (s.first_message_at at time zone 'UTC')::date as day, v.platform, s.responder,
       count(*)::integer as conversations,
       percentile_cont(0.5) within group (order by extract(epoch from s.responded_at - s.first_message_at))
         as p50_seconds,
       percentile_cont(0.9) within group (order by extract(epoch from s.responded_at - s.first_message_at))
         as p90_seconds
from responses s
join public.conversations v on v.id = s.conversation_id
group by 1, 2, 3;
comment on view public.analytics_first_response is 'Time to first response per UTC day (of the conversation''s first customer message), platform and responder: bot (its first sent answer or handoff notice) or human (first operator reply or approved draft), p50 and p90 in seconds.';

create view public.analytics_drafts_daily with (security_invoker = true) as
select (r.created_at at time zone 'UTC')::date as day, v.platform,
       count(*)::integer as drafts,
       count(*) filter (where r.status = 'approved')::integer as approved,
       count(*) filter (where r.status = 'approved' and r.original_content is not null)::integer as edited,
       count(*) filter (where r.status = 'discarded')::integer as discarded,
       count(*) filter (where r.status = 'draft')::integer as waiting,
       (count(*) filter (where r.status = 'approved'))::double precision
         / nullif(count(*) filter (where r.status in ('approved', 'discarded')), 0) as approval_rate,
       (count(*) filter (where r.status = 'approved' and r.original_content is not null))::double precision
         / nullif(count(*) filter (where r.status = 'approved'), 0) as edit_rate
from public.replies r
join public.conversations v on v.id = r.conversation_id
where r.kind = 'bot' and r.status in ('draft', 'approved', 'discarded')
  -- Answers fenced off by a takeover were never offered to anyone for approval.
  and r.discard_reason is distinct from 'takeover'
group by 1, 2;
comment on view public.analytics_drafts_daily is 'Bot drafts per UTC day and platform: approved (edited), discarded (by an operator or superseded by their reply), waiting; approval rate = approved / decided, edit rate = edited / approved. Answers discarded by the takeover fence are not drafts and not counted.';

create view public.analytics_delivery_daily with (security_invoker = true) as
select (r.created_at at time zone 'UTC')::date as day, v.platform,
       count(*)::integer as replies,
       count(*) filter (where r.delivery_state = 'delivered')::integer as delivered,
       count(*) filter (where r.delivery_state = 'failed')::integer as failed,
       count(*) filter (where r.delivery_state = 'stopped')::integer as stopped,
       count(*) filter (where r.delivery_state in ('pending', 'delivering', 'retrying'))::integer as in_flight,
       count(*) filter (where r.delivery_attempts > 1)::integer as retried,
       coalesce(sum(r.delivery_attempts), 0)::integer as attempts,
       coalesce(sum(r.resend_count), 0)::integer as resends,
       (count(*) filter (where r.delivery_state = 'delivered'))::double precision
         / nullif(count(*) filter (where r.delivery_state in ('delivered', 'failed', 'stopped')), 0) as success_rate
from public.replies r
join public.conversations v on v.id = r.conversation_id
where r.status in ('sent', 'approved')
group by 1, 2;
comment on view public.analytics_delivery_daily is 'Replies to deliver per UTC day (written) and platform: delivered, failed, stopped, still in flight, retried (more than one attempt), attempts, operator re-sends; success rate = delivered / finished.';

create view public.analytics_model_usage_daily with (security_invoker = true) as
select (k.created_at at time zone 'UTC')::date as day, k.model,
       count(*)::integer as calls,
       sum(k.prompt_tokens)::bigint as prompt_tokens,
       sum(k.completion_tokens)::bigint as completion_tokens,
       (sum(k.prompt_tokens) * p.input_usd_per_million + sum(k.completion_tokens) * p.output_usd_per_million)
         / 1000000 as estimated_cost_usd
from public.classifications k
left join public.model_prices p on p.model = k.model
group by 1, 2, p.input_usd_per_million, p.output_usd_per_million;
comment on view public.analytics_model_usage_daily is 'Model calls, tokens and estimated cost in USD per UTC day and model (prices from model_prices; null cost when the model has no price).';

revoke all on public.message_outcomes, public.analytics_messages_daily, public.analytics_auto_resolve_daily,
  public.analytics_first_response, public.analytics_drafts_daily, public.analytics_delivery_daily,
  public.analytics_model_usage_daily from anon, authenticated, public;
grant select on public.message_outcomes, public.analytics_messages_daily, public.analytics_auto_resolve_daily,
  public.analytics_first_response, public.analytics_drafts_daily, public.analytics_delivery_daily,
  public.analytics_model_usage_daily to authenticated, service_role;
