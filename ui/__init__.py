"""Streamlit helpers the dashboard pages share (outside the core): shell, state, caches, formats, charts, views.

Pages `import ui` and use the names below; each lives in the module of its concern.
"""

from covcall.names import plural
from ui.cache import (
    CACHE_TTL_S,
    actions_over_time,
    calibrations,
    candles,
    count_rows,
    counts,
    dataset_summary,
    db_key,
    equities,
    event_calendar,
    filter_key,
    invalidate,
    job_status,
    jobs,
    market_comparison,
    models,
    page_rows,
    range_set_names,
    realism_result,
    regime_windows,
    reward_by,
    reward_histogram,
    run_view,
    runs,
    series,
    snapshots,
    unfinished_jobs,
    walks,
)
from ui.charts import (
    CC_COLOR,
    DD_COLOR,
    HODL_COLOR,
    TEST_COLOR,
    TRAIN_COLOR,
    compare_figure,
    equity_figure,
    layout,
    price_figure,
    shade_ranges,
)
from ui.formats import (
    PCT_METRICS,
    USD_METRICS,
    fmt_coin,
    fmt_count,
    fmt_days,
    fmt_metric,
    fmt_pct,
    fmt_ratio,
    fmt_rows,
    fmt_usd,
    metric_number,
    number_columns,
)
from ui.range_views import range_chart, range_set_on_screen
from ui.real_views import calibration_panel, realism_panel
from ui.run_views import batch_result, recent_runs, run_labels, run_result
from ui.shell import (
    DATE_FORMAT,
    attempt,
    count_progress,
    fraction_progress,
    get_settings,
    get_store,
    navigation_pages,
    page_shell,
    plan_caption,
    run_page,
    sweep_done,
    sweep_start,
    sweep_stopped,
)
from ui.state import keep_page_state, kept, query_state, remember, set_kept
from ui.views import (
    TRADE_COLUMNS,
    copy_rows_bytes,
    download_buttons,
    explain_view,
    metric_cards,
    metrics_table,
    trades_table,
)
from ui.walk_views import walk_result

__all__ = [
    "plural",
    "CACHE_TTL_S", "actions_over_time", "candles", "count_rows", "counts", "dataset_summary", "db_key",
    "download_buttons", "equities", "filter_key", "invalidate", "job_status", "jobs", "unfinished_jobs", "models", "page_rows", "range_set_names", "regime_windows",
    "reward_by", "reward_histogram", "run_view", "runs", "series", "snapshots", "event_calendar", "walks", "CC_COLOR", "DD_COLOR", "HODL_COLOR",
    "TEST_COLOR", "TRAIN_COLOR", "compare_figure", "equity_figure", "layout", "price_figure", "shade_ranges",
    "PCT_METRICS", "USD_METRICS", "fmt_coin", "fmt_count", "fmt_days", "fmt_metric", "fmt_pct", "fmt_ratio",
    "fmt_rows", "fmt_usd", "DATE_FORMAT", "attempt", "count_progress", "fraction_progress", "get_settings",
    "get_store", "navigation_pages", "page_shell", "plan_caption", "run_page", "sweep_done", "sweep_start", "sweep_stopped", "kept", "set_kept", "keep_page_state", "query_state", "remember", "TRADE_COLUMNS",
    "copy_rows_bytes", "download_buttons", "explain_view", "metric_cards", "metrics_table", "trades_table", "batch_result", "recent_runs",
    "run_labels", "run_result", "walk_result", "calibration_panel", "realism_panel", "calibrations", "market_comparison",
    "realism_result", "range_chart", "range_set_on_screen", "number_columns", "metric_number",
]
