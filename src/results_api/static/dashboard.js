// The results dashboard: plain DOM + the bundled uPlot, no framework, no build step.
// Every request is same-origin and relative ("api/..."), so the Airflow session cookie
// authenticates it and the page works under any base URL or inside the Airflow UI frame.
"use strict";

(() => {
  const numberFormat = new Intl.NumberFormat("en-US");
  const $ = (selector) => document.querySelector(selector);

  class ApiError extends Error {
    constructor(status, message) {
      super(message);
      this.status = status;
    }
  }

  // A read that stalls (the api-server behind a busy metadata database) becomes an error
  // after this long, so its panel says so and tries again instead of staying empty. Not
  // shorter than a slow read that does answer: `make airflow` on a loaded 2-core machine
  // answered a region's market (1,431 types) in 24-28 s, and a 20 s limit aborted every
  // try, so the panel stayed empty although the data was there (issue 22.8).
  const REQUEST_TIMEOUT_MS = 60000;

  async function getJson(path) {
    const controller = new AbortController();
    const timer = setTimeout(() => controller.abort(), REQUEST_TIMEOUT_MS);
    let response;
    try {
      response = await fetch(path, {
        credentials: "same-origin",
        headers: { Accept: "application/json" },
        signal: controller.signal,
      });
    } catch (error) {
      const timedOut = error.name === "AbortError";
      throw new ApiError(0, timedOut ? `no answer within ${REQUEST_TIMEOUT_MS / 1000} s` : error.message);
    } finally {
      clearTimeout(timer);
    }
    const body = await response.json().catch(() => ({}));
    if (!response.ok) {
      if (response.status === 401) {
        showStatus("Your Airflow session has ended: log in to Airflow again, then reload this page.");
      }
      throw new ApiError(response.status, describeError(body, response.status));
    }
    return body;
  }

  // FastAPI answers {"detail": "text"} or, for invalid input, {"detail": [{loc, msg}, ...]}.
  function describeError(body, status) {
    const detail = body && body.detail;
    if (Array.isArray(detail)) {
      return detail.map((d) => `${(d.loc || []).slice(-1)[0]}: ${d.msg}`).join("; ");
    }
    return detail || `HTTP ${status}`;
  }

  function showStatus(text) {
    const status = $("#status");
    status.textContent = text;
    status.hidden = false;
  }

  function element(tag, attributes = {}, children = []) {
    const node = document.createElement(tag);
    for (const [name, value] of Object.entries(attributes)) {
      if (name === "text") node.textContent = value;
      else node.setAttribute(name, value);
    }
    for (const child of children) node.append(child);
    return node;
  }

  const priceFormat = new Intl.NumberFormat("en-US", { minimumFractionDigits: 2, maximumFractionDigits: 2 });

  function formatNumber(value) {
    return value === null || value === undefined ? "–" : numberFormat.format(value);
  }

  function formatFigure(name, value) {
    if (value === null || value === undefined) return "–";
    return name.endsWith("_price") ? priceFormat.format(value) : numberFormat.format(value);
  }

  // ---- Panels that have no data yet try again ----------------------------------------
  // Every panel loads on open. One whose read failed or found nothing (its DAG has not loaded
  // yet, a read stalled) loads again every RETRY_MS and when the tab is shown again, until it
  // has data: the page fills in when the pipeline has run, without pressing a button.
  const RETRY_MS = 10000;
  const panels = {
    loaders: {},
    timers: {},
    loaded(name) {
      clearTimeout(this.timers[name]);
      delete this.timers[name];
      document.getElementById(name).dataset.state = "loaded";
    },
    failed(name) {
      clearTimeout(this.timers[name]);
      document.getElementById(name).dataset.state = "waiting";
      this.timers[name] = setTimeout(() => this.loaders[name](), RETRY_MS);
    },
    retryWaiting() {
      for (const name of Object.keys(this.timers)) {
        clearTimeout(this.timers[name]);
        this.loaders[name]();
      }
    },
  };

  // ---- COVID chart -------------------------------------------------------------------

  const covid = { granularity: "daily", plot: null };

  function dayToSeconds(isoDay) {
    return Date.parse(`${isoDay}T00:00:00Z`) / 1000;
  }

  // The two y axes (cases and recoveries on the left, deaths on the right) share one zero
  // line: each scale's range has zero at the same height, the largest share below zero that
  // either needs (negative changes are revisions), so a deaths line never starts below the
  // cases' zero. Ranges hold every value of their series, padded 5%.
  const Y_SCALES = ["cases", "deaths"];
  const MAX_SHARE_BELOW_ZERO = 0.9; // a scale with nothing above zero still leaves room above

  function extentOf(u, scale) {
    let low = 0;
    let high = 0;
    u.series.forEach((series, index) => {
      if (index === 0 || series.scale !== scale) return;
      for (const value of u.data[index]) {
        if (value === null || value === undefined) continue;
        low = Math.min(low, value);
        high = Math.max(high, value);
      }
    });
    return [low, high];
  }

  function zeroAlignedRange(u, scale) {
    const shares = Y_SCALES.map((key) => {
      const [low, high] = extentOf(u, key);
      return high > low ? -low / (high - low) : 0;
    });
    const below = Math.min(Math.max(...shares), MAX_SHARE_BELOW_ZERO);
    const [low, high] = extentOf(u, scale);
    let top = below > 0 ? Math.max(high, (-low * (1 - below)) / below) : high;
    if (top <= 0) top = 1; // no data, or only zeros
    top *= 1.05;
    return [(-below / (1 - below)) * top, top];
  }

  function covidOptions(width, granularity) {
    const showPoints = granularity !== "daily" && granularity !== "cumulative";
    const prefix = granularity === "cumulative" ? "" : "New ";
    const name = (text) => (prefix ? prefix + text : text[0].toUpperCase() + text.slice(1));
    return {
      width,
      height: 320,
      tzDate: (seconds) => uPlot.tzDate(new Date(seconds * 1000), "Etc/UTC"),
      scales: {
        x: { time: true },
        cases: { range: (u) => zeroAlignedRange(u, "cases") },
        deaths: { range: (u) => zeroAlignedRange(u, "deaths") },
      },
      // null (a gap of the source) is drawn as a break in the line, never as a value
      legend: { live: true },
      series: [
        { label: granularity === "daily" || granularity === "cumulative" ? "Day" : "Period starting" },
        {
          label: name("cases"),
          scale: "cases",
          stroke: "#017cee",
          width: 1.5,
          points: { show: showPoints },
          value: (u, v) => formatNumber(v),
        },
        {
          label: name("recoveries"),
          scale: "cases",
          stroke: "#2e8540",
          width: 1.5,
          points: { show: showPoints },
          value: (u, v) => (v === null || v === undefined ? "no data" : formatNumber(v)),
        },
        {
          label: name("deaths"),
          scale: "deaths",
          stroke: "#d64545",
          width: 1.5,
          points: { show: showPoints },
          value: (u, v) => formatNumber(v),
        },
      ],
      axes: [
        {},
        { scale: "cases", label: "cases", size: 70, values: (u, ticks) => ticks.map(compact) },
        { scale: "deaths", label: "deaths", side: 1, size: 60, grid: { show: false },
          values: (u, ticks) => ticks.map(compact) },
      ],
    };
  }

  function compact(value) {
    return new Intl.NumberFormat("en-US", { notation: "compact" }).format(value);
  }

  function showAsOf(selector, dagId, asOf) {
    $(selector).textContent = asOf
      ? `Data as of ${asOf.replace("T", " ").replace("+00:00", " UTC")} (${dagId}'s last load).`
      : `${dagId} has not loaded yet.`;
  }

  const sumOf = (periods, name) => periods.reduce((sum, p) => sum + (p[name] ?? 0), 0);

  function drawCovid(granularity, columns, count) {
    const chart = $("#covid-chart");
    if (covid.plot) covid.plot.destroy();
    chart.replaceChildren();
    chart.dataset.granularity = granularity;
    chart.dataset.periods = String(count);
    covid.plot = new uPlot(covidOptions(chart.clientWidth || 800, granularity), columns, chart);
    chart.uplot = covid.plot; // for the browser test: where each scale's zero is drawn
  }

  async function loadCumulative() {
    const params = new URLSearchParams();
    const from = $("#covid-from").value;
    const to = $("#covid-to").value;
    if (from) params.set("from", from);
    if (to) params.set("to", to);
    const chart = $("#covid-chart");
    const summary = $("#covid-summary");
    const query = `api/covid/cumulative${params.size ? `?${params}` : ""}`;
    $("#covid-csv").href = `${query}${params.size ? "&" : "?"}format=csv`;
    try {
      const data = await getJson(query);
      const days = data.days;
      const gaps = Object.entries(data.gap_days).filter(([, count]) => count > 0);
      chart.dataset.partial = "";
      chart.dataset.gaps = String(days.filter((d) => d.gaps.length).length);
      $("#covid-notes").textContent = gaps.length
        ? `Missing where the source stopped reporting (shown as a break): ` +
          gaps.map(([metric, count]) => `${metric} on ${count} days`).join(", ") + "."
        : "";
      showAsOf("#covid-asof", "covid_daily", data.data_as_of);
      drawCovid("cumulative", [
        days.map((d) => dayToSeconds(d.day)),
        days.map((d) => d.cases),
        days.map((d) => d.recoveries),
        days.map((d) => d.deaths),
      ], days.length);
      const last = days[days.length - 1];
      const lastWith = (name) => [...days].reverse().find((d) => d[name] !== null);
      const recovered = lastWith("recoveries");
      summary.textContent = days.length
        ? `${days.length} days, ${days[0].day} to ${last.day}: ${formatNumber(last.cases)} cases and ` +
          `${formatNumber(last.deaths)} deaths in total` +
          (recovered ? `; ${formatNumber(recovered.recoveries)} recoveries as last reported (${recovered.day}).` : ".")
        : "No COVID data in this range (the covid_daily DAG loads it).";
      summary.classList.remove("error");
      panels[days.length || from || to ? "loaded" : "failed"]("covid"); // nothing loaded yet: wait
    } catch (error) {
      summary.textContent = `Could not load COVID figures: ${error.message}`;
      summary.classList.add("error");
      panels.failed("covid");
    }
  }

  async function loadCovid() {
    if (covid.granularity === "cumulative") return loadCumulative();
    const params = new URLSearchParams({ granularity: covid.granularity });
    const from = $("#covid-from").value;
    const to = $("#covid-to").value;
    if (from) params.set("from", from);
    if (to) params.set("to", to);
    const chart = $("#covid-chart");
    const summary = $("#covid-summary");
    const notes = $("#covid-notes");
    $("#covid-csv").href = `api/covid?${params}&format=csv`;
    try {
      const data = await getJson(`api/covid?${params}`);
      const periods = data.periods;
      const columns = [
        periods.map((p) => dayToSeconds(p.start)),
        periods.map((p) => p.new_cases),
        periods.map((p) => p.new_recoveries),
        periods.map((p) => p.new_deaths),
      ];
      const partial = periods.filter((p) => !p.complete).map((p) => p.period);
      const gaps = periods.filter((p) => p.gaps.length).map((p) => `${p.period} (${p.gaps.join(", ")})`);
      const first = periods.find((p) => p.first_day);
      chart.dataset.partial = partial.join(" ");
      chart.dataset.gaps = String(gaps.length);
      const lines = [];
      if (first) lines.push(`${first.period} holds the series' first day, counted from zero.`);
      if (partial.length) lines.push(`Partial (not a whole ${covid.granularity === "weekly" ? "week" : "month"}): ${partial.join(", ")}.`);
      if (gaps.length) {
        const shown = gaps.slice(0, 3).join("; ") + (gaps.length > 3 ? `; and ${gaps.length - 3} more` : "");
        lines.push(`Missing where the source stopped reporting (shown as a break): ${shown}.`);
      }
      notes.textContent = lines.join(" ");
      showAsOf("#covid-asof", "covid_daily", data.data_as_of);
      drawCovid(data.granularity, columns, periods.length);
      summary.textContent = periods.length
        ? `${periods.length} ${data.granularity} periods, ${periods[0].start} to ` +
          `${periods[periods.length - 1].end}: ${formatNumber(sumOf(periods, "new_cases"))} new cases, ` +
          `${formatNumber(sumOf(periods, "new_deaths"))} new deaths, ` +
          `${formatNumber(sumOf(periods, "new_recoveries"))} reported recoveries` +
          (data.baseline_day ? ` (changes measured from ${data.baseline_day}).` : ".")
        : "No COVID data in this range (the covid_daily DAG loads it).";
      summary.classList.remove("error");
      panels[periods.length || from || to ? "loaded" : "failed"]("covid"); // nothing loaded yet: wait
    } catch (error) {
      summary.textContent = `Could not load COVID figures: ${error.message}`;
      summary.classList.add("error");
      panels.failed("covid");
    }
  }

  function setGranularity(granularity) {
    covid.granularity = granularity;
    for (const button of document.querySelectorAll("[data-granularity]")) {
      button.setAttribute("aria-pressed", String(button.dataset.granularity === granularity));
    }
    return loadCovid();
  }

  // ---- Market ------------------------------------------------------------------------

  const MARKET_COLUMNS = ["sell_volume", "buy_volume", "min_sell_price", "max_buy_price"];
  const label = (name) => name.replaceAll("_", " ");

  // EVE's name for the type (stored by market_orders), its id beside it; the id alone when
  // ESI has no name for it.
  function typeCell(type) {
    if (!type.type_name) return element("td", { class: "type", text: String(type.type_id) });
    return element("td", { class: "type", title: `type_id ${type.type_id}` }, [
      type.type_name,
      element("span", { class: "muted type-id", text: ` ${type.type_id}` }),
    ]);
  }

  async function loadMarket() {
    const region = $("#market-region").value;
    const sort = $("#market-sort").value;
    const top = $("#market-top").value;
    const target = $("#market-result");
    const download = $("#market-csv");
    const query = `api/market/${encodeURIComponent(region)}?${new URLSearchParams({ sort, top })}`;
    download.href = `${query}&format=csv`;
    try {
      const data = await getJson(query);
      download.hidden = false;
      showAsOf("#market-asof", "market_orders", data.data_as_of);
      const largest = Math.max(...data.types.map((t) => Number(t[sort]) || 0), 1);
      // The ranked figure with a bar, then the other headline figures (not repeated).
      const others = MARKET_COLUMNS.filter((name) => name !== sort);
      const rows = data.types.map((t, index) => {
        const bar = element("span", { class: "bar" });
        bar.style.width = `${(100 * (Number(t[sort]) || 0)) / largest}%`;
        return element("tr", {}, [
          element("td", { class: "num", text: String(index + 1) }),
          typeCell(t),
          element("td", { class: "num", text: formatFigure(sort, t[sort]) }),
          element("td", { class: "bar-cell" }, [bar]),
          ...others.map((name) => element("td", { class: "num", text: formatFigure(name, t[name]) })),
        ]);
      });
      const header = element("tr", {}, [
        element("th", { class: "num", text: "#" }),
        element("th", { text: "type" }),
        element("th", { class: "num", text: label(sort) }),
        element("th", {}),
        ...others.map((name) => element("th", { class: "num", text: label(name) })),
      ]);
      target.replaceChildren(
        element("p", {
          class: "muted",
          text: `Region ${data.region_id}: top ${data.types.length} of ${data.types_total} types by ` +
            `${label(sort)}.`,
        }),
        element("div", { class: "table-scroll" }, [
          element("table", { id: "market-table" }, [
            element("thead", {}, [header]),
            element("tbody", {}, rows),
          ]),
        ])
      );
      panels.loaded("market");
    } catch (error) {
      download.hidden = true;
      const hint = error.status === 404 ? " (the market_orders DAG loads a region; shown here when it has)" : "";
      target.replaceChildren(element("p", { class: "error", text: error.message + hint }));
      panels.failed("market");
    }
  }

  // ---- Department lookup -------------------------------------------------------------

  async function lookUpDepartment() {
    const name = $("#department-input").value.trim();
    const target = $("#department-result");
    if (!name) return;
    try {
      const record = await getJson(`api/departments/${encodeURIComponent(name)}`);
      const employees = Object.entries(record.employees).sort(([a], [b]) => a.localeCompare(b));
      const facts = [...new Set(employees.flatMap(([, f]) => Object.keys(f)))].sort();
      const header = element("tr", {}, [
        element("th", { text: "employee" }),
        ...facts.map((fact) => element("th", { text: fact })),
      ]);
      const rows = employees.map(([employee, values]) =>
        element("tr", {}, [
          element("td", { text: employee }),
          ...facts.map((fact) => {
            const value = values[fact];
            const numeric = typeof value === "number";
            return element("td", {
              class: numeric ? "num" : "",
              text: value === undefined ? "" : numeric ? formatNumber(value) : String(value),
            });
          }),
        ])
      );
      target.replaceChildren(
        element("h3", { text: record.department }),
        element("dl", { class: "meta" }, [
          element("dt", { text: "employees" }),
          element("dd", { text: String(record.employee_count) }),
          element("dt", { text: "source" }),
          element("dd", { text: record.source_key || "–" }),
          element("dt", { text: "loaded at" }),
          element("dd", { text: record.loaded_at || "–" }),
        ]),
        element("div", { class: "table-scroll" }, [
          element("table", { id: "department-table" }, [
            element("thead", {}, [header]),
            element("tbody", {}, rows),
          ]),
        ])
      );
    } catch (error) {
      target.replaceChildren(element("p", { class: "error", text: error.message }));
    }
  }

  // ---- Department list: prefix search, a page at a time ----------------------------

  const departmentList = { prefix: "", cursor: null, timer: null };

  async function listDepartments(more = false) {
    const list = $("#department-names");
    const moreButton = $("#department-more");
    if (!more) {
      departmentList.prefix = $("#department-input").value.trim();
      departmentList.cursor = null;
    }
    const params = new URLSearchParams({ prefix: departmentList.prefix, limit: "20" });
    if (departmentList.cursor) params.set("cursor", departmentList.cursor);
    try {
      const data = await getJson(`api/departments?${params}`);
      const items = data.departments.map((name) => {
        const button = element("button", { type: "button", class: "link", text: name });
        button.addEventListener("click", () => {
          $("#department-input").value = name;
          lookUpDepartment();
        });
        return element("li", {}, [button]);
      });
      if (more) list.append(...items);
      else list.replaceChildren(...items);
      departmentList.cursor = data.next_cursor;
      moreButton.hidden = !data.next_cursor;
      showAsOf("#directory-asof", "department_directory", data.data_as_of);
      if (!more) panels[data.departments.length ? "loaded" : "failed"]("directory");
    } catch (error) {
      list.replaceChildren(element("li", { class: "error", text: error.message }));
      moreButton.hidden = true;
      if (!more) panels.failed("directory");
    }
  }

  // ---- Wiring ------------------------------------------------------------------------

  function start() {
    for (const button of document.querySelectorAll("[data-granularity]")) {
      button.addEventListener("click", () => setGranularity(button.dataset.granularity));
    }
    $("#covid-form").addEventListener("submit", (event) => {
      event.preventDefault();
      loadCovid();
    });
    $("#market-form").addEventListener("submit", (event) => {
      event.preventDefault();
      loadMarket();
    });
    $("#department-form").addEventListener("submit", (event) => {
      event.preventDefault();
      lookUpDepartment();
    });
    $("#department-input").addEventListener("input", () => {
      clearTimeout(departmentList.timer);
      departmentList.timer = setTimeout(() => listDepartments(), 250);
    });
    $("#department-more").addEventListener("click", () => listDepartments(true));
    window.addEventListener("resize", () => {
      const chart = $("#covid-chart");
      if (covid.plot) covid.plot.setSize({ width: chart.clientWidth, height: 320 });
    });
    document.addEventListener("visibilitychange", () => {
      if (document.visibilityState === "visible") panels.retryWaiting();
    });
    const region = new URLSearchParams(window.location.search).get("region");
    if (region && /^\d+$/.test(region)) $("#market-region").value = region; // dashboard?region=N
    panels.loaders = { covid: loadCovid, market: loadMarket, directory: () => listDepartments() };
    loadCovid();
    loadMarket();
    listDepartments();
  }

  start();
})();
