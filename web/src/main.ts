// The streamgate dashboard: live per-page counts (WatchPageStats) drawn with uPlot, supplier
// controls (ControlSupplier) and a live tail of a topic (Subscribe) in the Live view; topics
// (ListTopics, AdminService) and consumer groups (AdminService) in the Topics and Groups
// views; all over grpc-web to the server that serves this page. Every stream reconnects by
// itself.
//
// This module puts the page together and is the only one that acts when loaded: it finds the
// elements (all of them, up front, with their types checked), makes the clients with the
// session's bearer interceptor, and starts each panel with the client and its elements.
// connection.ts: token, sign-in, connection indicator and retries; chart.ts: page counts;
// supplier.ts: the supplier panel; tail.ts: the live tail; views.ts: the nav bar; admin.ts:
// the Topics (topics.ts, topic-form.ts) and Groups (groups.ts, reset.ts) views.

import { createClient } from "@connectrpc/connect";
import { createGrpcWebTransport } from "@connectrpc/connect-web";
import "uplot/dist/uPlot.min.css";
import "./app.css";
import { EventGateway } from "./gen/streamgate/v1/gateway_pb";
import { adminViews } from "./admin";
import { ChartPanel } from "./chart";
import { ConnectionIndicator, Session, TokenStore } from "./connection";
import { allInside, byId, inside, type ElementClass } from "./dom";
import { SupplierPanel } from "./supplier";
import { TailPanel } from "./tail";
import { Navigation, type View } from "./views";

function main(): void {
  const element = <T extends HTMLElement>(id: string, type: ElementClass<T>) => byId(document, id, type);

  const connection = element("connection", HTMLElement);
  const indicator = new ConnectionIndicator({ root: connection, text: inside(connection, ".text", HTMLElement) });
  const session = new Session(new TokenStore(() => window.sessionStorage), indicator, {
    signin: element("signin", HTMLElement),
    form: element("signin-form", HTMLFormElement),
    token: element("token", HTMLInputElement),
    error: element("signin-error", HTMLElement),
    signout: element("signout", HTMLButtonElement),
  });
  const transport = createGrpcWebTransport({ baseUrl: window.location.origin, interceptors: [session.bearer] });
  const client = createClient(EventGateway, transport);
  const chart = new ChartPanel(client, session, indicator, {
    chart: element("chart", HTMLElement),
    legend: element("legend", HTMLUListElement),
    window: element("window", HTMLElement),
    error: element("chart-error", HTMLElement),
    modes: allInside(document, "input[name=mode]", HTMLInputElement),
  });
  const supplier = new SupplierPanel(client, session, {
    status: element("supplier-status", HTMLElement),
    error: element("supplier-error", HTMLElement),
    form: element("supplier-form", HTMLFormElement),
    rate: element("rate", HTMLInputElement),
    pages: element("pages", HTMLInputElement),
    start: element("start", HTMLButtonElement),
    stop: element("stop", HTMLButtonElement),
  });
  const tail = new TailPanel(client, session, {
    form: element("tail-form", HTMLFormElement),
    topic: element("tail-topic", HTMLInputElement),
    filterForm: element("tail-filter-form", HTMLFormElement),
    filter: element("tail-filter", HTMLInputElement),
    filterError: element("tail-filter-error", HTMLElement),
    list: element("tail", HTMLOListElement),
    error: element("tail-error", HTMLElement),
  });

  const { topics, groups } = adminViews(transport, client, session);
  const live: View = {
    // uPlot measured a hidden container: fit it to the width it has now.
    show: () => { chart.resize(); return element("chart-title", HTMLElement); },
    hide: () => {},
  };
  const navigation = new Navigation({
    links: { live: element("nav-live", HTMLAnchorElement), topics: element("nav-topics", HTMLAnchorElement), groups: element("nav-groups", HTMLAnchorElement) },
    sections: { live: element("view-live", HTMLElement), topics: element("view-topics", HTMLElement), groups: element("view-groups", HTMLElement) },
  }, { live, topics, groups });

  setInterval(() => indicator.check(), 1000);
  window.addEventListener("resize", () => chart.resize());
  session.start();
  chart.start();
  supplier.start();
  tail.start();
  navigation.start();
}

main();
