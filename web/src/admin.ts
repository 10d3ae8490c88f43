// Puts the Topics and Groups views together: finds their elements (all up front, types
// checked, as main.ts does for the live panels), and makes the views, their dialogs and the
// AdminService client. Nothing is called until a view is shown.

import { createClient, type Transport } from "@connectrpc/connect";
import { AdminService } from "./gen/streamgate/v1/admin_pb";
import type { Session } from "./connection";
import { ConfirmDialog } from "./confirm";
import { byId, type ElementClass } from "./dom";
import { GroupsView } from "./groups";
import { ResetDialog } from "./reset";
import { CreateTopicDialog } from "./topic-form";
import { type TopicsGateway, TopicsView } from "./topics";

export function adminViews(transport: Transport, gateway: TopicsGateway, session: Session): { topics: TopicsView; groups: GroupsView } {
  const el = <T extends HTMLElement>(id: string, type: ElementClass<T>) => byId(document, id, type);
  const admin = createClient(AdminService, transport);

  const confirm = new ConfirmDialog(session, {
    dialog: el("confirm-dialog", HTMLDialogElement),
    form: el("confirm-form", HTMLFormElement),
    title: el("confirm-title", HTMLElement),
    message: el("confirm-message", HTMLElement),
    prompt: el("confirm-prompt", HTMLLabelElement),
    input: el("confirm-input", HTMLInputElement),
    confirm: el("confirm-ok", HTMLButtonElement),
    cancel: el("confirm-cancel", HTMLButtonElement),
    error: el("confirm-error", HTMLElement),
  });
  const create = new CreateTopicDialog(admin, session, {
    dialog: el("create-dialog", HTMLDialogElement),
    form: el("create-form", HTMLFormElement),
    name: el("create-name", HTMLInputElement),
    partitions: el("create-partitions", HTMLInputElement),
    replication: el("create-replication", HTMLInputElement),
    configs: el("create-configs", HTMLTextAreaElement),
    cancel: el("create-cancel", HTMLButtonElement),
    review: el("create-review", HTMLElement),
    summary: el("create-summary", HTMLElement),
    confirm: el("create-confirm", HTMLButtonElement),
    back: el("create-back", HTMLButtonElement),
    error: el("create-error", HTMLElement),
  });
  const reset = new ResetDialog(admin, session, {
    dialog: el("reset-dialog", HTMLDialogElement),
    group: el("reset-group", HTMLElement),
    form: el("reset-form", HTMLFormElement),
    topics: el("reset-topics", HTMLElement),
    otherTopics: el("reset-other", HTMLInputElement),
    target: el("reset-target", HTMLSelectElement),
    numberRow: el("reset-number-row", HTMLElement),
    numberLabel: el("reset-number-label", HTMLLabelElement),
    number: el("reset-number", HTMLInputElement),
    datetimeRow: el("reset-datetime-row", HTMLElement),
    datetime: el("reset-datetime", HTMLInputElement),
    cancel: el("reset-cancel", HTMLButtonElement),
    plan: el("reset-plan", HTMLElement),
    planSummary: el("reset-plan-summary", HTMLElement),
    planTable: el("reset-plan-table", HTMLTableElement),
    execute: el("reset-execute", HTMLButtonElement),
    error: el("reset-error", HTMLElement),
  });

  const topics = new TopicsView(admin, gateway, session, {
    list: el("topics-list", HTMLElement),
    listTitle: el("topics-title", HTMLElement),
    filter: el("topics-filter", HTMLInputElement),
    refresh: el("topics-refresh", HTMLButtonElement),
    create: el("topic-create", HTMLButtonElement),
    createNote: el("topic-create-note", HTMLElement),
    status: el("topics-status", HTMLElement),
    error: el("topics-error", HTMLElement),
    table: el("topics-table", HTMLTableElement),
    detail: el("topic-detail", HTMLElement),
    crumb: el("topic-crumb", HTMLElement),
    title: el("topic-title", HTMLElement),
    detailRefresh: el("topic-refresh", HTMLButtonElement),
    remove: el("topic-delete", HTMLButtonElement),
    removeNote: el("topic-delete-note", HTMLElement),
    summary: el("topic-summary", HTMLElement),
    detailError: el("topic-error", HTMLElement),
    partitions: el("topic-partitions", HTMLTableElement),
    schema: el("topic-schema", HTMLElement),
    schemaSummary: el("topic-schema-summary", HTMLElement),
    schemaDetails: el("topic-schema-details", HTMLDetailsElement),
    schemaDefinition: el("topic-schema-definition", HTMLPreElement),
    configsNote: el("topic-configs-note", HTMLElement),
    overridesOnly: el("topic-overrides-only", HTMLInputElement),
    configs: el("topic-configs", HTMLTableElement),
  }, confirm, create);

  const groups = new GroupsView(admin, session, {
    list: el("groups-list", HTMLElement),
    listTitle: el("groups-title", HTMLElement),
    filter: el("groups-filter", HTMLInputElement),
    refresh: el("groups-refresh", HTMLButtonElement),
    openForm: el("group-open-form", HTMLFormElement),
    openInput: el("group-open", HTMLInputElement),
    status: el("groups-status", HTMLElement),
    listNote: el("groups-note", HTMLElement),
    error: el("groups-error", HTMLElement),
    table: el("groups-table", HTMLTableElement),
    detail: el("group-detail", HTMLElement),
    crumb: el("group-crumb", HTMLElement),
    title: el("group-title", HTMLElement),
    live: el("group-live", HTMLElement),
    reset: el("group-reset", HTMLButtonElement),
    resetNote: el("group-reset-note", HTMLElement),
    remove: el("group-delete", HTMLButtonElement),
    removeNote: el("group-delete-note", HTMLElement),
    state: el("group-state", HTMLElement),
    protocol: el("group-protocol", HTMLElement),
    memberCount: el("group-member-count", HTMLElement),
    totalLag: el("group-total-lag", HTMLElement),
    note: el("group-note", HTMLElement),
    detailStatus: el("group-status", HTMLElement),
    detailError: el("group-error", HTMLElement),
    members: el("group-members", HTMLTableElement),
    partitions: el("group-partitions", HTMLTableElement),
  }, confirm, reset);

  topics.start();
  groups.start();
  return { topics, groups };
}
