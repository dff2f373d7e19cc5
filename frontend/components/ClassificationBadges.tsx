"use client";

import type { Classification } from "@/lib/classification";
import { useI18n } from "@/lib/i18n/context";

type Keyed<T> = Record<string, T>;

function label(values: Keyed<string>, value: string): string {
  return values[value] ?? value;
}

/** A classification at a glance: category, intent, urgency, sentiment, language and confidence. */
export function ClassificationBadges({ value, compact = false }: { value: Classification | null; compact?: boolean }) {
  const { t } = useI18n();
  if (!value) return <span className="muted">{t.classification.pending}</span>;
  const percent = Math.round(value.confidence * 100);
  return (
    <dl className={compact ? "badges compact" : "badges"} data-testid="classification">
      <div>
        <dt>{t.classification.category}</dt>
        <dd data-field="category">{value.category}</dd>
      </div>
      <div>
        <dt>{t.classification.urgency}</dt>
        <dd data-field="urgency" data-urgency={value.urgency}>
          {label(t.values.urgency, value.urgency)}
        </dd>
      </div>
      {compact ? null : (
        <div>
          <dt>{t.classification.intent}</dt>
          <dd data-field="intent">{value.intent}</dd>
        </div>
      )}
      <div>
        <dt>{t.classification.sentiment}</dt>
        <dd data-field="sentiment">{label(t.values.sentiment, value.sentiment)}</dd>
      </div>
      <div>
        <dt>{t.classification.language}</dt>
        <dd data-field="language">{value.language}</dd>
      </div>
      {compact ? null : (
        <div>
          <dt>{t.classification.confidence}</dt>
          <dd data-field="confidence">
            {percent}
            {"%"}
          </dd>
        </div>
      )}
      {value.needs_human ? (
        <div>
          <dt className="sr-only">{t.classification.needsHuman}</dt>
          <dd className="flag">{t.classification.needsHuman}</dd>
        </div>
      ) : null}
    </dl>
  );
}
