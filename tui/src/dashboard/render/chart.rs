//! The throughput chart: published, delivered and dropped per second over the last minute.

use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::symbols::Marker;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Axis, Block, Chart, Dataset, GraphType, Widget};

use crate::dashboard::app::App;
use crate::dashboard::format::rate;
use crate::dashboard::history::CHART_SPAN_S;

pub fn render(app: &App, area: Rect, buf: &mut Buffer) {
    let th = app.theme();
    let points = app.history().points();
    let now = app.history().latest();
    let series = |f: fn(&crate::dashboard::history::RatePoint) -> f64| -> Vec<(f64, f64)> {
        points.iter().map(|p| (p.t - now.t, f(p))).collect()
    };
    let published = series(|p| p.published);
    let delivered = series(|p| p.delivered);
    let dropped = series(|p| p.dropped);
    let max = points
        .iter()
        .map(|p| p.published.max(p.delivered).max(p.dropped))
        .fold(0.0, f64::max);
    let top = nice_ceiling(max * 1.1);

    let title = Line::from(vec![
        Span::styled(" Throughput /s, last 60 s ", th.accent()),
        Span::styled(
            format!("─ published {} ", rate(now.published)),
            th.published(),
        ),
        Span::styled(
            format!("─ delivered {} ", rate(now.delivered)),
            th.delivered(),
        ),
        Span::styled(format!("─ dropped {} ", rate(now.dropped)), th.dropped()),
    ]);
    // Without colour the three lines differ by their marker.
    let markers = if !th.has_color() {
        [Marker::Braille, Marker::Dot, Marker::Bar]
    } else {
        [Marker::Braille; 3]
    };
    let datasets = vec![
        Dataset::default()
            .name("published")
            .marker(markers[0])
            .graph_type(GraphType::Line)
            .style(th.published())
            .data(&published),
        Dataset::default()
            .name("delivered")
            .marker(markers[1])
            .graph_type(GraphType::Line)
            .style(th.delivered())
            .data(&delivered),
        Dataset::default()
            .name("dropped")
            .marker(markers[2])
            .graph_type(GraphType::Line)
            .style(th.dropped())
            .data(&dropped),
    ];
    Chart::new(datasets)
        .block(Block::bordered().border_style(th.border()).title(title))
        .legend_position(None)
        .x_axis(
            Axis::default()
                // No labels: the title says "last 60 s", and on a 24-line screen the two rows an
                // axis takes are worth more as plot.
                .bounds([-CHART_SPAN_S, 0.0])
                .style(th.dim()),
        )
        .y_axis(
            Axis::default()
                .bounds([0.0, top])
                .labels(["0".to_string(), rate(top)])
                .style(th.dim()),
        )
        .render(area, buf);
}

/// A round number at or above `x` (1, 2 or 5 times a power of ten), so the axis label reads well.
fn nice_ceiling(x: f64) -> f64 {
    if !x.is_finite() || x <= 1.0 {
        return 1.0;
    }
    let magnitude = 10f64.powf(x.log10().floor());
    [1.0, 2.0, 5.0, 10.0]
        .iter()
        .map(|m| m * magnitude)
        .find(|v| *v >= x)
        .unwrap_or(10.0 * magnitude)
}
