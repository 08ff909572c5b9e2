// The "Analytics" link of each app on the Apps page, to its insight page.
import { useT } from "../i18n";
import { insightText } from "../i18n/insight";
import { Link } from "../router";

export function AnalyticsLink({ slug }: { slug: string }) {
  const t = useT(insightText);
  return (
    <Link className="button small" to={`/apps/${slug}/insight`} data-testid={`analytics-${slug}`}>
      {t("analytics")}
    </Link>
  );
}
