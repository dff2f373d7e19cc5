"use client";

import type { Connection } from "@/lib/live/connection";
import { format } from "@/lib/i18n";
import { useI18n } from "@/lib/i18n/context";

/** Says when the live connection is down (and when the last read failed); silent while live. */
export function LiveBanner({ connection, error }: { connection: Connection; error?: string | null }) {
  const { t } = useI18n();
  return (
    <div aria-live="polite" className="banner-slot" data-connection={connection}>
      {connection === "down" ? (
        <p role="alert" className="banner" data-testid="live-down">
          {t.live.down}
        </p>
      ) : null}
      {error ? (
        <p role="alert" className="banner">
          {format(t.live.readFailed, { reason: error })}
        </p>
      ) : null}
    </div>
  );
}
