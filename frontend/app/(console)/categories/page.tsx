import { CategoriesEditor } from "@/components/CategoriesEditor";
import { requireUser } from "@/lib/auth";
import { fetchCategories } from "@/lib/categories";
import { currentDictionary } from "@/lib/i18n/server";

export default async function CategoriesPage() {
  const { supabase } = await requireUser("/categories");
  const [{ data: admin }, { t }] = await Promise.all([supabase.rpc("is_admin"), currentDictionary()]);
  if (admin !== true) {
    // The table refuses an agent's writes anyway (RLS); the page says so instead of offering a form.
    return (
      <main id="main">
        <h1>{t.categories.title}</h1>
        <p role="alert" className="error" data-testid="admins-only">
          {t.categories.adminsOnly}
        </p>
      </main>
    );
  }
  const categories = await fetchCategories(supabase);
  return (
    <main id="main">
      <h1>{t.categories.title}</h1>
      <p className="muted">{t.categories.intro}</p>
      <CategoriesEditor initial={categories} />
    </main>
  );
}
