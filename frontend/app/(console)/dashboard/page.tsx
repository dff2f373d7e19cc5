import { requireUser } from "@/lib/auth";
import { fetchDashboard, NO_LABEL, summary, type Bar } from "@/lib/dashboard";
import { format } from "@/lib/i18n";
import { currentDictionary } from "@/lib/i18n/server";

export default async function DashboardPage() {
  const { supabase } = await requireUser("/dashboard");
  const [data, { t, locale }] = await Promise.all([fetchDashboard(supabase), currentDictionary()]);
  const s = summary(data);
  const d = t.dashboard;
  const percent = (value: number | null) => (value === null ? "—" : `${Math.round(value * 100)}%`);
  const seconds = (value: number | null) => (value === null ? "—" : format(d.seconds, { n: value.toFixed(1) }));
  const outcome = (label: string) => d.outcomes[label as keyof typeof d.outcomes] ?? label;
  return (
    <main id="main" className="dashboard">
      <h1>{d.title}</h1>
      <p className="muted">{format(d.period, { since: data.since })}</p>
      {s.messages === 0 ? <p data-testid="no-data">{d.noData}</p> : null}
      <section aria-labelledby="kpis" className="kpis">
        <h2 id="kpis">{d.glance}</h2>
        <dl>
          <Kpi id="messages" label={d.messages} value={String(s.messages)} />
          <Kpi id="auto-resolve" label={d.autoResolve} value={percent(s.autoResolve)} />
          <Kpi id="approval" label={d.approval} value={percent(s.approval)} />
          <Kpi id="edits" label={d.edits} value={percent(s.edits)} />
          <Kpi id="delivery" label={d.delivery} value={percent(s.delivery)} />
          <Kpi id="waiting" label={d.draftsWaiting} value={String(s.draftsWaiting)} />
        </dl>
      </section>
      <Bars id="by-category" title={d.byCategory}
            bars={s.byCategory.map((b) => (b.label === NO_LABEL ? { ...b, label: t.classification.pending } : b))} />
      <Bars id="by-outcome" title={d.byOutcome} bars={s.byOutcome.map((b) => ({ ...b, label: outcome(b.label) }))} />
      <section aria-labelledby="first-response">
        <h2 id="first-response">{d.firstResponse}</h2>
        {data.firstResponse.length === 0 ? (
          <p className="muted">{d.noData}</p>
        ) : (
          <table data-testid="first-response">
            <thead>
              <tr>
                <th scope="col">{d.day}</th>
                <th scope="col">{d.platform}</th>
                <th scope="col">{d.responder}</th>
                <th scope="col">{d.p50}</th>
                <th scope="col">{d.p90}</th>
              </tr>
            </thead>
            <tbody>
              {data.firstResponse.map((r) => (
                <tr key={`${r.day}-${r.platform}-${r.responder}`}>
                  <td>{r.day}</td>
                  <td>{r.platform}</td>
                  <td>{d.responders[r.responder as keyof typeof d.responders] ?? r.responder}</td>
                  <td>{seconds(r.p50_seconds)}</td>
                  <td>{seconds(r.p90_seconds)}</td>
                </tr>
              ))}
            </tbody>
          </table>
        )}
      </section>
      <Bars id="cost" title={d.cost} bars={s.costByDay}
            show={(v) => v.toLocaleString(locale, { style: "currency", currency: "USD", maximumFractionDigits: 4 })} />
      <Bars id="tokens" title={d.tokens} bars={s.tokensByModel} />
    </main>
  );
}

function Kpi({ id, label, value }: { id: string; label: string; value: string }) {
  return (
    <div className="kpi" data-kpi={id}>
      <dt>{label}</dt>
      <dd>{value}</dd>
    </div>
  );
}

/** A bar chart a screen reader reads as a list of labels and values; the bars only draw the same numbers. */
function Bars({ id, title, bars, show = String }: { id: string; title: string; bars: Bar[]; show?: (v: number) => string }) {
  const max = Math.max(0, ...bars.map((b) => b.value));
  return (
    <section aria-labelledby={id} data-chart={id}>
      <h2 id={id}>{title}</h2>
      {bars.length === 0 ? <p className="muted">—</p> : null}
      <ul className="bars">
        {bars.map((bar) => (
          <li key={bar.label} data-bar={bar.label}>
            <span className="bar-label">{bar.label}</span>
            <span className="bar" aria-hidden="true" style={{ width: `${max > 0 ? (bar.value / max) * 100 : 0}%` }} />
            <span className="bar-value">{show(bar.value)}</span>
          </li>
        ))}
      </ul>
    </section>
  );
}
