-- Example conversations, in Russian and English, so Studio and the console have something to show on a
-- fresh local stack. The Supabase CLI applies this file after the migrations on `supabase db reset` (and the
-- first `supabase start`); `make run` applies it when it creates the local stack's data folder. Every
-- message is finished (answered or handed off) and every reply delivered, so the listener has nothing to do
-- with these rows. One (Ivan's double charge) is handed to a person: a holding reply went out, as the
-- listener sends when the model sets needs_human. Ids are fixed, and a second run changes nothing.

insert into public.clients (id) values
  ('demo_anna'), ('demo_ivan'), ('demo_john'), ('demo_emma')
on conflict do nothing;

insert into public.conversations (id, client_id, platform, chat_id, webhook_url, created_at, updated_at) values
  ('5eed0000-0000-4000-8000-000000000001', 'demo_anna', 'telegram', '100200300', null,
   now() - interval '2 hours', now() - interval '110 minutes'),
  ('5eed0000-0000-4000-8000-000000000002', 'demo_ivan', 'web', 'web-42', 'https://example.com/hooks/demo',
   now() - interval '90 minutes', now() - interval '90 minutes'),
  ('5eed0000-0000-4000-8000-000000000003', 'demo_john', 'web', 'site-7', 'https://example.com/hooks/demo',
   now() - interval '1 hour', now() - interval '1 hour'),
  ('5eed0000-0000-4000-8000-000000000004', 'demo_emma', 'telegram', '400500600', null,
   now() - interval '30 minutes', now() - interval '30 minutes')
on conflict do nothing;

-- Inbound messages (a customer's, with its state) and outbound ones (the replies' text in the history).
insert into public.messages
  (id, conversation_id, client_id, direction, content, state, reply_to, attempts, created_at, finished_at)
values
  ('5eed0000-0000-4000-8000-000000000101', '5eed0000-0000-4000-8000-000000000001', 'demo_anna', 'inbound',
   'Здравствуйте! Где мой заказ №4521? Обещали доставить вчера.', 'answered', null, 1,
   now() - interval '2 hours', now() - interval '2 hours' + interval '2 seconds'),
  ('5eed0000-0000-4000-8000-000000000102', '5eed0000-0000-4000-8000-000000000001', 'demo_anna', 'outbound',
   'Здравствуйте, Анна! Заказ №4521 передан в службу доставки и будет у вас сегодня до 18:00. Трек-номер мы отправили на вашу почту.',
   null, '5eed0000-0000-4000-8000-000000000101', 0,
   now() - interval '2 hours' + interval '2 seconds', null),
  ('5eed0000-0000-4000-8000-000000000103', '5eed0000-0000-4000-8000-000000000001', 'demo_anna', 'inbound',
   'Спасибо большое!', 'answered', null, 1,
   now() - interval '110 minutes', now() - interval '110 minutes' + interval '1 second'),
  ('5eed0000-0000-4000-8000-000000000104', '5eed0000-0000-4000-8000-000000000001', 'demo_anna', 'outbound',
   'Пожалуйста! Если появятся вопросы, пишите в любое время.',
   null, '5eed0000-0000-4000-8000-000000000103', 0,
   now() - interval '110 minutes' + interval '1 second', null),
  ('5eed0000-0000-4000-8000-000000000201', '5eed0000-0000-4000-8000-000000000002', 'demo_ivan', 'inbound',
   'С карты дважды списали 2 990 ₽ за одну подписку. Верните деньги немедленно!', 'handoff', null, 1,
   now() - interval '90 minutes', now() - interval '90 minutes' + interval '2 seconds'),
  ('5eed0000-0000-4000-8000-000000000202', '5eed0000-0000-4000-8000-000000000002', 'demo_ivan', 'outbound',
   'Понимаю, как это неприятно. Я передал ваше обращение специалисту по оплатам: он проверит списания и ответит вам здесь.',
   null, '5eed0000-0000-4000-8000-000000000201', 0,
   now() - interval '90 minutes' + interval '2 seconds', null),
  ('5eed0000-0000-4000-8000-000000000301', '5eed0000-0000-4000-8000-000000000003', 'demo_john', 'inbound',
   'Hi! How much is the Pro plan per month, and is there a yearly discount?', 'answered', null, 1,
   now() - interval '1 hour', now() - interval '1 hour' + interval '2 seconds'),
  ('5eed0000-0000-4000-8000-000000000302', '5eed0000-0000-4000-8000-000000000003', 'demo_john', 'outbound',
   'Hi John! The Pro plan is $29 a month; paid yearly it is $290, two months free. Would you like a trial?',
   null, '5eed0000-0000-4000-8000-000000000301', 0,
   now() - interval '1 hour' + interval '2 seconds', null),
  ('5eed0000-0000-4000-8000-000000000401', '5eed0000-0000-4000-8000-000000000004', 'demo_emma', 'inbound',
   'The app crashes every time I upload a photo from my gallery.', 'answered', null, 1,
   now() - interval '30 minutes', now() - interval '30 minutes' + interval '3 seconds'),
  ('5eed0000-0000-4000-8000-000000000402', '5eed0000-0000-4000-8000-000000000004', 'demo_emma', 'outbound',
   'Sorry about that, Emma. Please update the app to the latest version; if it still crashes, tell us your phone model and we will look into it.',
   null, '5eed0000-0000-4000-8000-000000000401', 0,
   now() - interval '30 minutes' + interval '3 seconds', null)
on conflict do nothing;

insert into public.classifications
  (message_id, conversation_id, category, intent, sentiment, urgency, language, confidence, needs_human,
   model, prompt_version, created_at)
values
  ('5eed0000-0000-4000-8000-000000000101', '5eed0000-0000-4000-8000-000000000001', 'order_status',
   'track_order', 'neutral', 'normal', 'ru', 0.93, false, 'seed-example', 'seed', now() - interval '2 hours'),
  ('5eed0000-0000-4000-8000-000000000103', '5eed0000-0000-4000-8000-000000000001', 'feedback',
   'thank', 'positive', 'low', 'ru', 0.9, false, 'seed-example', 'seed', now() - interval '110 minutes'),
  ('5eed0000-0000-4000-8000-000000000201', '5eed0000-0000-4000-8000-000000000002', 'billing',
   'refund_double_charge', 'negative', 'high', 'ru', 0.88, true, 'seed-example', 'seed',
   now() - interval '90 minutes'),
  ('5eed0000-0000-4000-8000-000000000301', '5eed0000-0000-4000-8000-000000000003', 'pricing',
   'ask_price', 'neutral', 'normal', 'en', 0.95, false, 'seed-example', 'seed', now() - interval '1 hour'),
  ('5eed0000-0000-4000-8000-000000000401', '5eed0000-0000-4000-8000-000000000004', 'technical_support',
   'report_crash', 'negative', 'normal', 'en', 0.86, false, 'seed-example', 'seed',
   now() - interval '30 minutes')
on conflict do nothing;

-- Delivered already: nothing here is due for the listener's delivery loop.
insert into public.replies
  (id, message_id, conversation_id, outbound_message_id, content, model, delivery_state, delivery_attempts,
   next_attempt_at, delivered_at, last_status_code, created_at)
select r.id, r.message_id, r.conversation_id, r.outbound_message_id, m.content, 'seed-example', 'delivered', 1,
       null, m.created_at + interval '1 second', 200, m.created_at
from (values
  ('5eed0000-0000-4000-8000-000000000501'::uuid, '5eed0000-0000-4000-8000-000000000101'::uuid,
   '5eed0000-0000-4000-8000-000000000001'::uuid, '5eed0000-0000-4000-8000-000000000102'::uuid),
  ('5eed0000-0000-4000-8000-000000000502', '5eed0000-0000-4000-8000-000000000103',
   '5eed0000-0000-4000-8000-000000000001', '5eed0000-0000-4000-8000-000000000104'),
  ('5eed0000-0000-4000-8000-000000000505', '5eed0000-0000-4000-8000-000000000201',
   '5eed0000-0000-4000-8000-000000000002', '5eed0000-0000-4000-8000-000000000202'),
  ('5eed0000-0000-4000-8000-000000000503', '5eed0000-0000-4000-8000-000000000301',
   '5eed0000-0000-4000-8000-000000000003', '5eed0000-0000-4000-8000-000000000302'),
  ('5eed0000-0000-4000-8000-000000000504', '5eed0000-0000-4000-8000-000000000401',
   '5eed0000-0000-4000-8000-000000000004', '5eed0000-0000-4000-8000-000000000402')
) as r (id, message_id, conversation_id, outbound_message_id)
join public.messages m on m.id = r.outbound_message_id
on conflict do nothing;

insert into public.delivery_attempts (reply_id, attempt, webhook_id, outcome, status_code, duration_ms, worker, created_at)
select r.id, 1, r.id::text, 'delivered', 200, 120, 'seed', r.delivered_at
from public.replies r
where r.model = 'seed-example'
  and not exists (select 1 from public.delivery_attempts a where a.reply_id = r.id);
