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

  async function getJson(path) {
    const response = await fetch(path, {
      credentials: "same-origin",
      headers: { Accept: "application/json" },
    });
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

  // ---- COVID chart -------------------------------------------------------------------

  const covid = { granularity: "daily", plot: null };

  function dayToSeconds(isoDay) {
    return Date.parse(`${isoDay}T00:00:00Z`) / 1000;
  }

  function covidOptions(width, granularity) {
    const showPoints = granularity !== "daily";
    return {
      width,
      height: 320,
      tzDate: (seconds) => uPlot.tzDate(new Date(seconds * 1000), "Etc/UTC"),
      scales: { x: { time: true }, cases: { auto: true }, deaths: { auto: true } },
      // null (a gap of the source) is drawn as a break in the line, never as a value
      legend: { live: true },
      series: [
        { label: granularity === "daily" ? "Day" : "Period starting" },
        {
          label: "New cases",
          scale: "cases",
          stroke: "#017cee",
          width: 1.5,
          points: { show: showPoints },
          value: (u, v) => formatNumber(v),
        },
        {
          label: "New recoveries",
          scale: "cases",
          stroke: "#2e8540",
          width: 1.5,
          points: { show: showPoints },
          value: (u, v) => (v === null || v === undefined ? "no data" : formatNumber(v)),
        },
        {
          label: "New deaths",
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

  async function loadCovid() {
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
      if (covid.plot) covid.plot.destroy();
      chart.replaceChildren();
      chart.dataset.granularity = data.granularity;
      chart.dataset.periods = String(periods.length);
      covid.plot = new uPlot(covidOptions(chart.clientWidth || 800, data.granularity), columns, chart);
      summary.textContent = periods.length
        ? `${periods.length} ${data.granularity} periods, ${periods[0].start} to ` +
          `${periods[periods.length - 1].end}: ${formatNumber(sumOf(periods, "new_cases"))} new cases, ` +
          `${formatNumber(sumOf(periods, "new_deaths"))} new deaths, ` +
          `${formatNumber(sumOf(periods, "new_recoveries"))} reported recoveries` +
          (data.baseline_day ? ` (changes measured from ${data.baseline_day}).` : ".")
        : "No COVID data in this range (the covid_daily DAG loads it).";
      summary.classList.remove("error");
    } catch (error) {
      summary.textContent = `Could not load COVID figures: ${error.message}`;
      summary.classList.add("error");
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
          element("td", { class: "num", text: String(t.type_id) }),
          element("td", { class: "num", text: formatFigure(sort, t[sort]) }),
          element("td", { class: "bar-cell" }, [bar]),
          ...others.map((name) => element("td", { class: "num", text: formatFigure(name, t[name]) })),
        ]);
      });
      const header = element("tr", {}, [
        element("th", { class: "num", text: "#" }),
        element("th", { class: "num", text: "type" }),
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
    } catch (error) {
      download.hidden = true;
      const hint = error.status === 404 ? " (the market_orders DAG loads a region)" : "";
      target.replaceChildren(element("p", { class: "error", text: error.message + hint }));
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
    } catch (error) {
      list.replaceChildren(element("li", { class: "error", text: error.message }));
      moreButton.hidden = true;
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
    loadCovid();
    loadMarket();
    listDepartments();
  }

  start();
})();
