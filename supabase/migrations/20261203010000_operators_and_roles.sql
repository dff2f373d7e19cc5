-- Why: people now sign in (Supabase Auth) to act on conversations, so who is an operator, with which
-- role, and whether the account is still active becomes data that RLS checks. public.operators gains a
-- foreign key to auth.users (a deleted auth user stops being an operator), a role (admin or agent) and
-- an active flag. Only ACTIVE operators read conversations, messages, classifications and replies; an
-- agent sees only their own operators row; an admin sees and manages every row. Deactivating an
-- operator takes effect at once for REST and for Realtime, because both evaluate these policies per
-- request / per change event.
--
-- Existing rows whose user_id has no auth.users row are DELETED before the foreign key is added: until
-- now nothing tied operators to Auth, so such rows name nobody who can sign in.
--
-- auth.users(id) exists on every Supabase project (GoTrue owns it) and in the local stack's bootstrap.

delete from public.operators o where not exists (select 1 from auth.users u where u.id = o.user_id);

alter table public.operators
  add constraint operators_user_id_fkey foreign key (user_id) references auth.users (id) on delete cascade,
  add column role text not null default 'agent' constraint operators_role_check check (role in ('admin', 'agent')),
  add column active boolean not null default true,
  add column updated_at timestamptz not null default now();

comment on table public.operators is 'People (Supabase Auth users) who work on conversations, with their role; RLS reads it through is_operator() and is_admin().';
comment on column public.operators.user_id is 'The auth user id (auth.uid() in policies); deleting the auth user removes the operator.';
comment on column public.operators.display_name is 'A name to show.';
comment on column public.operators.created_at is 'When the user became an operator.';
comment on column public.operators.role is 'admin: reads everything and manages operators; agent: reads conversations and their own operators row.';
comment on column public.operators.active is 'false: the operator keeps the account but reads nothing (REST and Realtime) until reactivated.';
comment on column public.operators.updated_at is 'When the row last changed (kept by a trigger).';

create index operators_active_admins on public.operators (user_id) where active and role = 'admin';
comment on index public.operators_active_admins is 'neiromatrius check: is there at least one active admin.';

create function public.operators_touch_updated_at() returns trigger
language plpgsql security invoker set search_path = ''
as $$
begin
  new.updated_at := now();
  return new;
end
$$;
comment on function public.operators_touch_updated_at() is 'Trigger: keeps operators.updated_at current on every update.';
revoke all on function public.operators_touch_updated_at() from public, anon, authenticated;

create trigger operators_touch_updated_at before update on public.operators
  for each row execute function public.operators_touch_updated_at();
comment on trigger operators_touch_updated_at on public.operators is 'Keeps updated_at current.';

-- Security definer so that policies on operators (and on other tables) can ask about the caller without
-- evaluating operators' own RLS again (no recursion). They only ever answer about auth.uid() itself.
create function public.is_operator() returns boolean
language sql stable security definer set search_path = ''
as $$
  select exists (select 1 from public.operators o where o.user_id = (select auth.uid()) and o.active)
$$;
comment on function public.is_operator() is 'Whether the caller (auth.uid()) is an active operator, of either role. Used by RLS policies.';

create function public.is_admin() returns boolean
language sql stable security definer set search_path = ''
as $$
  select exists (
    select 1 from public.operators o where o.user_id = (select auth.uid()) and o.active and o.role = 'admin'
  )
$$;
comment on function public.is_admin() is 'Whether the caller (auth.uid()) is an active admin. Used by RLS policies.';

revoke all on function public.is_operator(), public.is_admin() from public, anon;
grant execute on function public.is_operator(), public.is_admin() to authenticated, service_role;

-- Admins manage operators through the Data API; what a row may say is limited by the columns granted.
grant insert (user_id, role, active, display_name), update (role, active, display_name), delete
  on public.operators to authenticated;

drop policy "operators see themselves" on public.operators;
create policy "operators see themselves, admins see everyone" on public.operators for select to authenticated
  using (user_id = (select auth.uid()) or (select public.is_admin()));
create policy "admins add operators" on public.operators for insert to authenticated
  with check ((select public.is_admin()));
create policy "admins change operators" on public.operators for update to authenticated
  using ((select public.is_admin())) with check ((select public.is_admin()));
create policy "admins remove operators" on public.operators for delete to authenticated
  using ((select public.is_admin()));
comment on policy "operators see themselves, admins see everyone" on public.operators is
  'An operator (active or not) reads their own row, so a console can tell a deactivated account; admins read all.';
comment on policy "admins add operators" on public.operators is 'Only active admins add operators.';
comment on policy "admins change operators" on public.operators is 'Only active admins change roles, names and the active flag.';
comment on policy "admins remove operators" on public.operators is 'Only active admins remove operators (the Auth account stays).';

drop policy "operators read conversations" on public.conversations;
drop policy "operators read messages" on public.messages;
drop policy "operators read classifications" on public.classifications;
drop policy "operators read replies" on public.replies;
create policy "active operators read conversations" on public.conversations for select to authenticated
  using ((select public.is_operator()));
create policy "active operators read messages" on public.messages for select to authenticated
  using ((select public.is_operator()));
create policy "active operators read classifications" on public.classifications for select to authenticated
  using ((select public.is_operator()));
create policy "active operators read replies" on public.replies for select to authenticated
  using ((select public.is_operator()));
comment on policy "active operators read conversations" on public.conversations is 'Active operators (agents and admins) read every conversation.';
comment on policy "active operators read messages" on public.messages is 'Active operators read every message.';
comment on policy "active operators read classifications" on public.classifications is 'Active operators read every classification.';
comment on policy "active operators read replies" on public.replies is 'Active operators read every reply.';
