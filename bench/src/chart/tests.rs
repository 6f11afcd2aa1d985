use super::*;

/// Parses `svg` (panics, with the document, when it is not well-formed XML
/// or has a non-finite number in an attribute) and returns its text nodes.
fn texts(svg: &str) -> Vec<String> {
    let doc = roxmltree::Document::parse(svg).unwrap_or_else(|e| panic!("invalid SVG: {e}\n{svg}"));
    assert_eq!(doc.root_element().tag_name().name(), "svg");
    for n in doc.descendants().filter(roxmltree::Node::is_element) {
        for a in n.attributes() {
            assert!(
                !a.value().contains("NaN") && !a.value().contains("inf"),
                "non-finite {}={:?}",
                a.name(),
                a.value()
            );
        }
    }
    doc.descendants()
        .filter(|n| n.has_tag_name("text"))
        .filter_map(|n| n.text())
        .map(|t| t.trim().to_owned())
        .collect()
}

fn render(c: &Chart) -> (String, Vec<String>) {
    let svg = c.to_svg().expect("renders");
    let t = texts(&svg);
    (svg, t)
}

fn has(texts: &[String], want: &[&str]) {
    for w in want {
        assert!(texts.iter().any(|t| t == w), "no text {w:?} in {texts:?}");
    }
}

/// A latency curve like the fan-out chat's: 0% … 99.999%, heavy tail.
fn latency_curve(scale: f64) -> Vec<(f64, f64)> {
    (0..=200)
        .map(|i| {
            let p = 100.0 * (1.0 - 10f64.powf(-f64::from(i) / 40.0));
            (p, scale * (0.05 + 0.1 * (100.0 / (100.0 - p)).sqrt()))
        })
        .collect()
}

/// Each kind `bench compare` draws, from sample data shaped like
/// docs/bench/results.json: titles, axis labels, legends and ticks are
/// there, and the series get distinct colours.
#[test]
fn renders_every_chart_kind() {
    let hex = |c: RGBColor| format!("#{:02X}{:02X}{:02X}", c.0, c.1, c.2);
    let (rust, node) = (hex(PALETTE[0]), hex(PALETTE[1]));
    let latency = Chart::percentiles(
        "Chat delivery latency: 500 rooms × 10 peers, 1000 msg/s",
        "latency (ms)",
        vec![
            Series::new("rust", latency_curve(1.0)),
            Series::new("node", latency_curve(3.0)),
        ],
    )
    .log_y();
    let (svg, t) = render(&latency);
    has(
        &t,
        &[
            "Chat delivery latency: 500 rooms × 10 peers, 1000 msg/s",
            "percentile",
            "latency (ms)",
            "rust",
            "node",
            "0%",
            "50%",
            "90%",
            "99%",
            "99.9%",
            "99.999%",
            "0.1",
            "1",
        ],
    );
    assert!(svg.contains(&rust) && svg.contains(&node));

    let sweep = |k: f64| -> Vec<(f64, f64)> {
        [
            4975.0f64, 9950.0, 19900.0, 39800.0, 79600.0, 159_200.0, 318_400.0, 636_800.0,
        ]
        .iter()
        .map(|&x| (x, x.min(k)))
        .collect()
    };
    let saturation = Chart::line(
        "One 200-peer room: throughput vs offered load",
        "offered deliveries/s",
        "delivered/s",
        vec![
            Series::new("rust", sweep(1e9)),
            Series::new("node", sweep(437_734.0)),
        ],
    )
    .log_x()
    .log_y();
    let (_, t) = render(&saturation);
    has(
        &t,
        &["offered deliveries/s", "delivered/s", "10k", "100k", "1M"],
    );

    let rss = Chart::line(
        "Server RSS vs idle joined connections",
        "connections",
        "RSS (MiB)",
        vec![
            Series::new("rust", vec![(1e3, 22.0), (5e3, 76.0), (1e4, 143.0)]),
            Series::new("node", vec![(1e3, 92.0), (5e3, 156.0), (1e4, 223.0)]),
        ],
    );
    let (svg, t) = render(&rss);
    has(&t, &["connections", "RSS (MiB)", "0", "10k", "250"]);
    // Markers: a circle per rust point, a square per node point.
    assert_eq!(svg.matches("<circle").count(), 3 + 1);

    let costs = Chart::bars(
        "rust vs node: costs (lower is better)",
        "per unit",
        vec![
            "CPU µs / chat delivery".into(),
            "CPU µs / relayed signal".into(),
            "RSS KiB / idle conn".into(),
        ],
        vec![
            ("rust".into(), vec![16.6, 15.2, 13.9]),
            ("node".into(), vec![22.6, 45.8, 17.1]),
        ],
    );
    let (svg, t) = render(&costs);
    has(
        &t,
        &[
            "CPU µs / chat delivery",
            "RSS KiB / idle conn",
            "per unit",
            "16.6",
            "45.8",
            "rust",
            "node",
        ],
    );
    assert!(svg.contains(&rust) && svg.contains(&node));
}

#[test]
fn escapes_text() {
    let c = Chart::line(
        "a <b> & \"c\" 'd'\u{1}",
        "x<",
        "y&",
        vec![Series::new("<&>", vec![(1.0, 2.0)])],
    );
    let (svg, t) = render(&c);
    has(&t, &["a <b> & \"c\" 'd'", "x<", "y&", "<&>"]);
    assert!(!svg.contains('\u{1}'));
}

#[test]
fn edge_cases_render() {
    let nan = f64::NAN;
    let cases = vec![
        Chart::line("empty", "x", "y", vec![]),
        Chart::line("empty series", "x", "y", vec![Series::new("a", vec![])]),
        Chart::line("one", "x", "y", vec![Series::new("a", vec![(3.0, 4.0)])]),
        Chart::line(
            "equal",
            "x",
            "y",
            vec![Series::new("a", vec![(2.0, 5.0), (2.0, 5.0)])],
        ),
        Chart::line(
            "zeros",
            "",
            "",
            vec![Series::new("", vec![(0.0, 0.0), (0.0, 0.0)])],
        ),
        Chart::line(
            "nan",
            "x",
            "y",
            vec![Series::new(
                "a",
                vec![(nan, 1.0), (1.0, f64::INFINITY), (2.0, 3.0), (3.0, nan)],
            )],
        ),
        Chart::line(
            "log",
            "x",
            "y",
            vec![Series::new(
                "a",
                vec![
                    (0.0, 1.0),
                    (-1.0, 2.0),
                    (10.0, 0.0),
                    (100.0, 5.0),
                    (1e3, 50.0),
                ],
            )],
        )
        .log_x()
        .log_y(),
        Chart::line(
            "log empty",
            "x",
            "y",
            vec![Series::new("a", vec![(0.0, -1.0)])],
        )
        .log_y(),
        Chart::line(
            "huge",
            "x",
            "y",
            vec![Series::new("a", vec![(-1e300, 1e300), (1e300, -1e300)])],
        ),
        Chart::line(
            "max",
            "x",
            "y",
            vec![Series::new(
                "a",
                vec![(f64::MIN, f64::MAX), (f64::MAX, f64::MIN)],
            )],
        )
        .log_x(),
        Chart::line(
            "many series",
            "x",
            "y",
            (0..10)
                .map(|i| Series::new(format!("series {i}"), vec![(0.0, 0.0), (1.0, f64::from(i))]))
                .collect(),
        ),
        Chart::percentiles("p", "ms", vec![Series::new("a", vec![(100.0, 1.0)])]),
        Chart::percentiles("p", "ms", vec![Series::new("a", vec![(0.0, 1.0)])]),
        Chart::bars("bars empty", "y", vec![], vec![]),
        Chart::bars(
            "bars",
            "y",
            vec!["a".into(), "b".into()],
            vec![("s".into(), vec![1.0, nan, 3.0]), ("t".into(), vec![-2.0])],
        ),
        Chart::bars(
            "bars log",
            "y",
            vec!["a".into()],
            vec![("s".into(), vec![0.0]), ("t".into(), vec![5.0])],
        )
        .log_y(),
    ];
    for c in cases {
        render(&c);
    }
    let (_, t) = render(&Chart::line("empty", "x", "y", vec![]));
    has(&t, &["no data"]);
    let c = Chart::line(
        "log",
        "x",
        "y",
        vec![Series::new("a", vec![(1.0, 0.0), (2.0, 3.0)])],
    )
    .log_y();
    let (_, t) = render(&c);
    assert!(
        t.iter().any(|t| t.starts_with("1 point not shown")),
        "{t:?}"
    );
}
