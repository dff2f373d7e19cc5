-- Why: when an operator hands a conversation back to the bot (hand_back, set_bot_mode auto/draft, or an
-- admin's edit), the customer's unanswered messages become claimable, but no row of messages changed, so
-- no Realtime event told a listener: the answer waited for the listener's sweep (5 s by default). This
-- trigger touches those messages in the same transaction; the listener subscribes to inbound messages
-- becoming (or staying) pending and claims at once. A pause that ends by the clock has no write to hang
-- this on: the sweep still covers it.

create function public.conversations_wake_the_bot() returns trigger
language plpgsql security definer set search_path = ''
as $$
begin
  update public.messages m set updated_at = now()
  where m.conversation_id = new.id and m.direction = 'inbound' and m.state = 'pending';
  return null;
end
$$;
comment on function public.conversations_wake_the_bot() is
  'Trigger: the bot became active again in a conversation; its pending customer messages are touched so a change event wakes a listener.';
revoke all on function public.conversations_wake_the_bot() from public, anon, authenticated;

-- Security definer: hand_back runs as the operator, who may not write messages.
create trigger conversations_wake_the_bot after update on public.conversations
  for each row
  when ((old.bot_mode = 'off' or old.bot_paused_at is not null)
        and new.bot_mode <> 'off' and new.bot_paused_at is null)
  execute function public.conversations_wake_the_bot();
