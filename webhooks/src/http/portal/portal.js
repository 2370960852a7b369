"use strict";
// The customer portal. Plain JavaScript, no framework, no network but the management API.
// Every string the API returns is shown with textContent, never parsed as HTML.
(() => {
  const PAGE_SIZE = 20;
  const $ = (id) => document.getElementById(id);
  const meta = (name) => {
    const element = document.querySelector(`meta[name="${name}"]`);
    return element ? element.content : "";
  };
  const apiBase = new URL(meta("webhooks-api-base") || "./", document.baseURI);
  const authHeader = meta("webhooks-auth-header");
  const storageKey = `webhooks-portal:${apiBase.href}:${authHeader}`;

  const state = {
    // Bumped when the user signs out: answers to an earlier session's calls are dropped.
    session: 0,
    endpoints: new Map(),
    eventTypesLoaded: false,
    eventTypes: [],
    deliveries: [],
    next: null,
    limit: PAGE_SIZE,
    deliveriesCall: 0,
    openAttempts: new Set(),
    pollTimer: null,
    ids: 0,
    memoryCredential: "",
  };

  // ---- the value asked for (a token, a name), kept for this tab only ----

  function credential() {
    try {
      return sessionStorage.getItem(storageKey) || "";
    } catch {
      return state.memoryCredential;
    }
  }

  function remember(value) {
    state.memoryCredential = value;
    try {
      sessionStorage.setItem(storageKey, value);
    } catch {
      // Storage refused (private mode): kept in memory until the page is left.
    }
  }

  function forget() {
    state.memoryCredential = "";
    try {
      sessionStorage.removeItem(storageKey);
    } catch {
      // Nothing stored.
    }
  }

  // ---- calling the API ----

  class Problem extends Error {
    constructor(status, title, detail, type) {
      super(detail ? `${title}: ${detail}` : title);
      this.status = status;
      this.title = title;
      this.detail = detail;
      this.type = type || "";
    }
  }

  // An answer to a call made before the user signed out: ignored.
  class Stale extends Error {}

  async function api(method, path, body) {
    const headers = { accept: "application/json, application/problem+json" };
    if (body !== undefined) headers["content-type"] = "application/json";
    if (authHeader) {
      const value = credential();
      if (value) headers[authHeader] = value;
    }
    const session = state.session;
    let response;
    try {
      response = await fetch(new URL(path, apiBase), {
        method,
        headers,
        body: body === undefined ? undefined : JSON.stringify(body),
        credentials: "same-origin",
        cache: "no-store",
        redirect: "error",
      });
    } catch {
      if (session !== state.session) throw new Stale();
      throw new Problem(0, "Could not reach the server", "Check your connection, then try again.");
    }
    let data = null;
    const type = response.headers.get("content-type") || "";
    if (response.status !== 204 && type.includes("json")) {
      try {
        data = await response.json();
      } catch {
        data = null;
      }
    }
    if (session !== state.session) throw new Stale();
    if (!response.ok) {
      const problem = data && typeof data === "object" ? data : {};
      const title = typeof problem.title === "string" && problem.title
        ? problem.title
        : `The server answered ${response.status}`;
      const detail = typeof problem.detail === "string" ? problem.detail : "";
      throw new Problem(response.status, title, detail, typeof problem.type === "string" ? problem.type : "");
    }
    return data;
  }

  const encode = encodeURIComponent;

  // ---- messages: errors in the alert region, news in the status region ----

  function showError(error) {
    if (error instanceof Stale) return;
    const problem = error instanceof Problem
      ? error
      : new Problem(0, "Something went wrong", String(error && error.message ? error.message : error));
    const box = $("error");
    const title = document.createElement("strong");
    title.className = "title";
    title.textContent = problem.title;
    const children = [title];
    if (problem.detail) {
      const detail = document.createElement("span");
      detail.className = "detail";
      detail.textContent = problem.detail;
      children.push(detail);
    }
    box.replaceChildren(...children);
    box.dataset.status = String(problem.status);
    box.dataset.type = problem.type;
    if (problem.status === 401 && authHeader) {
      // The value was refused (or has expired): ask again.
      forget();
      leaveApp();
      showSignIn();
    }
  }

  function clearError() {
    const box = $("error");
    box.replaceChildren();
    delete box.dataset.status;
    delete box.dataset.type;
  }

  function announce(text) {
    $("status").textContent = text;
  }

  // Runs `work` for a button: one call at a time, errors shown, focus kept on the page.
  async function act(button, work) {
    if (button.getAttribute("aria-disabled") === "true") return;
    button.setAttribute("aria-disabled", "true");
    clearError();
    try {
      await work();
    } catch (error) {
      showError(error);
    } finally {
      button.removeAttribute("aria-disabled");
    }
  }

  // ---- small DOM helpers ----

  function element(tag, className, text) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function button(action, text, className) {
    const node = element("button", className, text);
    node.type = "button";
    node.dataset.action = action;
    return node;
  }

  function setTime(node, value) {
    if (!value) {
      node.textContent = "";
      node.removeAttribute("datetime");
      return;
    }
    const date = new Date(value);
    node.dateTime = value;
    node.textContent = Number.isNaN(date.getTime()) ? value : date.toLocaleString();
  }

  function setText(node, text) {
    if (node.textContent !== text) node.textContent = text;
  }

  function nextId(prefix) {
    state.ids += 1;
    return `${prefix}-${state.ids}`;
  }

  // Puts `items` into `list` in order, reusing the element of each key so that focus and
  // WebDriver references survive a refresh.
  function reconcile(list, items, keyOf, attribute, create, update) {
    const existing = new Map();
    for (const child of list.children) existing.set(child.getAttribute(attribute), child);
    items.forEach((item, index) => {
      const key = keyOf(item);
      let node = existing.get(key);
      if (node) {
        existing.delete(key);
      } else {
        node = create(item);
        node.setAttribute(attribute, key);
      }
      update(node, item);
      const at = list.children[index];
      if (at !== node) list.insertBefore(node, at || null);
    });
    for (const stale of existing.values()) stale.remove();
  }

  // ---- sign in, sign out ----

  function showSignIn() {
    $("app").hidden = true;
    $("signed-in").hidden = true;
    $("sign-in").hidden = false;
    document.body.dataset.state = "signed-out";
    $("sign-in-value").focus();
  }

  function enterApp() {
    $("sign-in").hidden = true;
    $("app").hidden = false;
    $("signed-in").hidden = !authHeader;
    document.body.dataset.state = "loading";
    loadAll(true);
  }

  // Forgets everything shown, so that the next session starts blank.
  function leaveApp() {
    state.session += 1;
    stopPolling();
    state.endpoints = new Map();
    state.eventTypesLoaded = false;
    state.eventTypes = [];
    state.deliveries = [];
    state.next = null;
    state.limit = PAGE_SIZE;
    state.openAttempts.clear();
    $("endpoints").replaceChildren();
    $("deliveries").replaceChildren();
    $("event-list").replaceChildren();
    $("event-types-loading").hidden = false;
    $("event-patterns-field").hidden = true;
    $("new-endpoint").reset();
    hideSecret(false);
    const select = $("delivery-endpoint");
    select.replaceChildren(new Option("All endpoints", ""));
    $("delivery-status").value = "";
    $("more-deliveries").hidden = true;
    $("no-endpoints").hidden = true;
    $("no-deliveries").hidden = true;
  }

  function signIn(event) {
    event.preventDefault();
    const input = $("sign-in-value");
    const value = input.value.trim();
    clearError();
    if (!value) {
      showError(new Problem(0, "Enter a value to sign in", ""));
      input.focus();
      return;
    }
    // A header value is visible ASCII; anything else cannot be sent.
    if (!/^[\x20-\x7e]+$/.test(value)) {
      showError(new Problem(0, "This value cannot be sent", "Use letters, digits and punctuation only (no accents)."));
      input.focus();
      return;
    }
    remember(value);
    input.value = "";
    announce("Signed in.");
    enterApp();
    // The form just hid: focus goes to the top of the page, not lost.
    $("title").focus();
  }

  function signOut() {
    forget();
    leaveApp();
    clearError();
    announce("Signed out.");
    showSignIn();
  }

  // ---- loading ----

  async function loadAll(initial) {
    try {
      await Promise.all([loadEventTypes(), loadEndpoints()]);
      await loadDeliveries();
      document.body.dataset.state = "ready";
      if (!initial) announce("Up to date.");
    } catch (error) {
      showError(error);
    }
  }

  async function loadEventTypes() {
    const answer = await api("GET", "event-types");
    const items = Array.isArray(answer && answer.items) ? answer.items : [];
    renderEventTypes(items);
    state.eventTypesLoaded = true;
  }

  async function loadEndpoints() {
    const answer = await api("GET", "subscriptions");
    const items = Array.isArray(answer && answer.items) ? answer.items : [];
    state.endpoints = new Map(items.map((s) => [s.id, s]));
    renderEndpoints();
  }

  async function loadDeliveries(more) {
    const call = ++state.deliveriesCall;
    const params = new URLSearchParams();
    const subscription = $("delivery-endpoint").value;
    if (subscription) params.set("subscription", subscription);
    const status = $("delivery-status").value;
    if (status) params.set("status", status);
    if (more && state.next) {
      params.set("after", state.next);
      params.set("limit", String(PAGE_SIZE));
    } else {
      params.set("limit", String(state.limit));
    }
    const answer = await api("GET", `deliveries?${params}`);
    if (call !== state.deliveriesCall) return; // a newer call answers
    const items = Array.isArray(answer && answer.items) ? answer.items : [];
    state.deliveries = more ? state.deliveries.concat(items) : items;
    state.limit = Math.min(1000, Math.max(PAGE_SIZE, state.deliveries.length));
    state.next = answer && typeof answer.next === "string" ? answer.next : null;
    renderDeliveries();
    await refreshOpenAttempts();
    schedulePoll();
  }

  // ---- event types ----

  function renderEventTypes(items) {
    state.eventTypes = items.filter((type) => type && typeof type.name === "string");
    const list = $("event-list");
    $("event-types-loading").hidden = true;
    if (items.length === 0) {
      // No catalog: the user types patterns.
      list.replaceChildren();
      $("event-patterns-field").hidden = false;
      return;
    }
    $("event-patterns-field").hidden = true;
    const checked = new Set(pickedEvents());
    const rows = [checkbox("*", "All events", "Every event, including ones added later.", null, checked)];
    for (const type of items) {
      if (!type || typeof type.name !== "string") continue;
      rows.push(checkbox(
        type.name,
        type.name,
        typeof type.description === "string" ? type.description : "",
        typeof type.deprecated === "string" ? type.deprecated : null,
        checked,
      ));
    }
    list.replaceChildren(...rows);
  }

  function checkbox(value, name, description, deprecated, checked) {
    const row = element("div", "check");
    const input = document.createElement("input");
    input.type = "checkbox";
    input.name = "event";
    input.value = value;
    input.id = nextId("event");
    input.checked = checked.has(value);
    const label = element("label");
    label.htmlFor = input.id;
    label.append(element("code", "", name));
    if (deprecated !== null) {
      label.append(" ", element("span", "badge", "deprecated"));
      description = deprecated ? `Deprecated: ${deprecated}. ${description}` : `Deprecated. ${description}`;
    }
    if (description) label.append(element("span", "muted", description));
    row.append(input, label);
    return row;
  }

  function pickedEvents() {
    if (!$("event-patterns-field").hidden) {
      return $("endpoint-patterns").value.split(",").map((p) => p.trim()).filter(Boolean);
    }
    const picked = [...document.querySelectorAll('#event-list input[name="event"]:checked')].map((i) => i.value);
    return picked.includes("*") ? ["*"] : picked;
  }

  // ---- endpoints ----

  async function createEndpoint(event) {
    event.preventDefault();
    await act($("create-endpoint"), async () => {
      const url = $("endpoint-url").value.trim();
      const events = pickedEvents();
      if (!url) {
        showError(new Problem(0, "Enter the endpoint's URL", "The address your server receives webhooks at, such as https://example.com/webhooks."));
        $("endpoint-url").focus();
        return;
      }
      if (events.length === 0) {
        showError(new Problem(0, "Pick at least one event", "Choose the events this endpoint receives."));
        const first = document.querySelector('#event-list input, #endpoint-patterns');
        if (first) first.focus();
        return;
      }
      const body = { url, events };
      const description = $("endpoint-description").value.trim();
      if (description) body.description = description;
      const created = await api("POST", "subscriptions", body);
      $("new-endpoint").reset();
      state.endpoints.set(created.id, withoutSecret(created));
      renderEndpoints();
      showSecret(created, "Endpoint added. Copy its signing secret now.");
      loadEndpoints().catch(showError);
    });
  }

  function withoutSecret(subscription) {
    const copy = { ...subscription };
    delete copy.secret;
    return copy;
  }

  function renderEndpoints() {
    const items = [...state.endpoints.values()];
    reconcile($("endpoints"), items, (s) => s.id, "data-subscription", createEndpointItem, updateEndpointItem);
    $("no-endpoints").hidden = items.length > 0;
    renderEndpointFilter(items);
    // Deliveries show their endpoint's URL.
    renderDeliveries();
  }

  function createEndpointItem() {
    const item = element("li", "endpoint");
    const head = element("div", "head");
    const url = element("h3", "url");
    url.id = nextId("endpoint");
    head.append(url, element("span", "badge state"));
    const description = element("p", "description");
    const details = element("div", "meta muted");
    const events = element("span", "events");
    const disabled = element("span", "disabled-reason");
    const created = element("span", "created");
    created.append("Added ", element("time"));
    details.append(events, disabled, created);
    const actions = element("div", "actions");
    actions.append(
      button("test", "Send test event", "primary"),
      button("show-deliveries", "Deliveries"),
      button("edit", "Edit"),
      button("rotate", "Rotate secret"),
      button("disable", "Disable"),
      button("enable", "Enable"),
      button("delete", "Delete", "danger"),
    );
    for (const b of actions.children) b.setAttribute("aria-describedby", url.id);
    const confirm = element("div", "confirm");
    confirm.hidden = true;
    confirm.append(
      element("span", "", "Delete this endpoint? It will receive nothing more."),
      button("confirm-delete", "Delete endpoint", "danger"),
      button("cancel-delete", "Cancel"),
    );
    item.append(head, description, details, actions, confirm);
    item.addEventListener("submit", (event) => saveEndpoint(event, item));
    return item;
  }

  // The inline form that changes an endpoint's URL, events and description (PATCH).
  function openEditor(item, subscription) {
    if (item.querySelector(".edit-form")) {
      item.querySelector(".edit-form input").focus();
      return;
    }
    const form = element("form", "edit-form");
    form.noValidate = true;
    const urlLabel = element("label", "", "Endpoint URL");
    const url = document.createElement("input");
    url.type = "url";
    url.name = "url";
    url.id = nextId("edit-url");
    url.value = String(subscription.url || "");
    url.spellcheck = false;
    urlLabel.htmlFor = url.id;
    const current = Array.isArray(subscription.events) ? subscription.events.map(String) : [];
    const fieldset = element("fieldset");
    fieldset.append(element("legend", "", "Events to receive"));
    if (state.eventTypes.length === 0) {
      const patternsLabel = element("label", "", "Event patterns, separated by commas");
      const patterns = document.createElement("input");
      patterns.type = "text";
      patterns.name = "patterns";
      patterns.id = nextId("edit-patterns");
      patterns.value = current.join(", ");
      patternsLabel.htmlFor = patterns.id;
      fieldset.append(patternsLabel, patterns);
    } else {
      const checked = new Set(current);
      fieldset.append(checkbox("*", "All events", "Every event, including ones added later.", null, checked));
      for (const type of state.eventTypes) {
        fieldset.append(checkbox(
          type.name,
          type.name,
          typeof type.description === "string" ? type.description : "",
          typeof type.deprecated === "string" ? type.deprecated : null,
          checked,
        ));
      }
      // Patterns that are not one of the boxes (say `invoice:*`) are kept.
      const known = new Set(["*", ...state.eventTypes.map((type) => type.name)]);
      const others = current.filter((pattern) => !known.has(pattern));
      form.dataset.otherPatterns = JSON.stringify(others);
      if (others.length) fieldset.append(element("p", "muted", `Also receives: ${others.join(", ")}`));
    }
    const descriptionLabel = element("label", "", "Description");
    const description = document.createElement("input");
    description.type = "text";
    description.name = "description";
    description.id = nextId("edit-description");
    description.value = typeof subscription.description === "string" ? subscription.description : "";
    descriptionLabel.htmlFor = description.id;
    const buttons = element("div", "row");
    const save = element("button", "", "Save");
    save.type = "submit";
    save.dataset.action = "save";
    buttons.append(save, button("cancel-edit", "Cancel"));
    form.append(urlLabel, url, fieldset, descriptionLabel, description, buttons);
    item.querySelector(".actions").after(form);
    url.focus();
  }

  function closeEditor(item) {
    const form = item.querySelector(".edit-form");
    if (form) form.remove();
    item.querySelector('[data-action="edit"]').focus();
  }

  async function saveEndpoint(event, item) {
    const form = event.target.closest(".edit-form");
    if (!form) return;
    event.preventDefault();
    const id = item.dataset.subscription;
    await act(form.querySelector('[data-action="save"]'), async () => {
      let events;
      const patterns = form.querySelector('input[name="patterns"]');
      if (patterns) {
        events = patterns.value.split(",").map((p) => p.trim()).filter(Boolean);
      } else {
        const picked = [...form.querySelectorAll('input[name="event"]:checked')].map((i) => i.value);
        const others = JSON.parse(form.dataset.otherPatterns || "[]");
        events = picked.includes("*") ? ["*"] : picked.concat(others);
      }
      if (events.length === 0) {
        showError(new Problem(0, "Pick at least one event", "Choose the events this endpoint receives."));
        return;
      }
      const description = form.querySelector('input[name="description"]').value.trim();
      const changed = await api("PATCH", `subscriptions/${encode(id)}`, {
        url: form.querySelector('input[name="url"]').value.trim(),
        events,
        description: description || null,
      });
      state.endpoints.set(id, changed);
      renderEndpoints();
      announce("Endpoint saved.");
      closeEditor(item);
    });
  }

  function updateEndpointItem(item, subscription) {
    const enabled = subscription.enabled !== false;
    item.dataset.enabled = String(enabled);
    setText(item.querySelector(".url"), String(subscription.url || ""));
    const badge = item.querySelector(".badge.state");
    setText(badge, enabled ? "Enabled" : "Disabled");
    badge.classList.toggle("enabled", enabled);
    badge.classList.toggle("disabled", !enabled);
    const description = item.querySelector(".description");
    setText(description, typeof subscription.description === "string" ? subscription.description : "");
    description.hidden = !description.textContent;
    const events = Array.isArray(subscription.events) ? subscription.events.map(String) : [];
    setText(item.querySelector(".events"), `Events: ${events.join(", ")}`);
    const reason = item.querySelector(".disabled-reason");
    const disabled = subscription.disabled;
    let why = "";
    if (!enabled && disabled && typeof disabled === "object") {
      if (disabled.reason === "manual") why = "Disabled by you";
      else if (typeof disabled.detail === "string" && disabled.detail) why = `Disabled: ${disabled.detail}`;
      else why = `Disabled: ${String(disabled.reason || "")}`;
    }
    setText(reason, why);
    reason.hidden = !why;
    setTime(item.querySelector(".created time"), subscription.created_at);
    item.querySelector('[data-action="disable"]').hidden = !enabled;
    item.querySelector('[data-action="enable"]').hidden = enabled;
  }

  function renderEndpointFilter(items) {
    const select = $("delivery-endpoint");
    const chosen = select.value;
    const options = [new Option("All endpoints", "")];
    for (const subscription of items) {
      options.push(new Option(String(subscription.url || subscription.id), subscription.id));
    }
    select.replaceChildren(...options);
    select.value = state.endpoints.has(chosen) ? chosen : "";
  }

  async function onEndpointAction(event) {
    const target = event.target.closest("button[data-action]");
    const item = event.target.closest("[data-subscription]");
    if (!target || !item) return;
    const id = item.dataset.subscription;
    const subscription = state.endpoints.get(id);
    if (!subscription) return;
    const path = `subscriptions/${encode(id)}`;
    const confirm = item.querySelector(".confirm");
    switch (target.dataset.action) {
      case "test":
        await act(target, async () => {
          const delivery = await api("POST", `${path}/test`, {});
          announce(`Test event sent to ${subscription.url}.`);
          const filter = $("delivery-endpoint");
          if (filter.value && filter.value !== id) filter.value = id;
          if (delivery && delivery.id) upsertDelivery(delivery);
          await loadDeliveries();
        });
        break;
      case "show-deliveries":
        $("delivery-endpoint").value = id;
        $("deliveries-heading").focus();
        await act(target, () => resetDeliveries());
        break;
      case "edit":
        openEditor(item, subscription);
        break;
      case "cancel-edit":
        closeEditor(item);
        break;
      case "rotate":
        await act(target, async () => {
          const rotated = await api("POST", `${path}/rotate-secret`, {});
          state.endpoints.set(id, withoutSecret(rotated));
          renderEndpoints();
          showSecret(rotated, "New signing secret made. Copy it now.");
        });
        break;
      case "disable":
      case "enable": {
        const action = target.dataset.action;
        await act(target, async () => {
          const changed = await api("POST", `${path}/${action}`, {});
          state.endpoints.set(id, changed);
          renderEndpoints();
          announce(action === "enable" ? "Endpoint enabled." : "Endpoint disabled.");
          item.querySelector(`[data-action="${action === "enable" ? "disable" : "enable"}"]`).focus();
        });
        break;
      }
      case "delete":
        confirm.hidden = false;
        confirm.querySelector('[data-action="confirm-delete"]').focus();
        break;
      case "cancel-delete":
        confirm.hidden = true;
        item.querySelector('[data-action="delete"]').focus();
        break;
      case "confirm-delete":
        await act(target, async () => {
          await api("DELETE", path);
          state.endpoints.delete(id);
          if ($("secret").dataset.subscription === id) hideSecret(false);
          renderEndpoints();
          announce(`Endpoint ${subscription.url} deleted.`);
          $("endpoints-heading").focus();
          await loadDeliveries();
        });
        break;
      default:
        break;
    }
  }

  // ---- the signing secret, shown once ----

  function showSecret(subscription, news) {
    const box = $("secret");
    box.dataset.subscription = subscription.id;
    $("secret-value").textContent = typeof subscription.secret === "string" ? subscription.secret : "";
    $("secret-url").textContent = String(subscription.url || "");
    box.hidden = false;
    announce(news);
    box.focus();
  }

  function hideSecret(moveFocus) {
    const box = $("secret");
    box.hidden = true;
    delete box.dataset.subscription;
    $("secret-value").textContent = "";
    $("secret-url").textContent = "";
    if (moveFocus) $("endpoints-heading").focus();
  }

  async function copySecret() {
    const secret = $("secret-value").textContent;
    try {
      await navigator.clipboard.writeText(secret);
      announce("Secret copied.");
    } catch {
      // No clipboard access: select it, so that the user can copy it.
      const range = document.createRange();
      range.selectNodeContents($("secret-value"));
      const selection = window.getSelection();
      selection.removeAllRanges();
      selection.addRange(range);
      announce("The secret is selected: copy it with your keyboard or menu.");
    }
  }

  // ---- deliveries ----

  const STATUS_TEXT = {
    pending: "Pending",
    in_flight: "Sending",
    delivered: "Delivered",
    failed: "Failed, will retry",
    exhausted: "Failed, no more retries",
    skipped: "Skipped",
  };

  function upsertDelivery(delivery) {
    const index = state.deliveries.findIndex((d) => d.id === delivery.id);
    if (index >= 0) state.deliveries[index] = delivery;
    else state.deliveries.unshift(delivery);
    renderDeliveries();
  }

  function resetDeliveries() {
    state.limit = PAGE_SIZE;
    state.next = null;
    return loadDeliveries();
  }

  function renderDeliveries() {
    const list = $("deliveries");
    reconcile(list, state.deliveries, (d) => d.id, "data-delivery", createDeliveryItem, updateDeliveryItem);
    $("no-deliveries").hidden = state.deliveries.length > 0;
    $("more-deliveries").hidden = !state.next;
  }

  function createDeliveryItem() {
    const item = element("li", "delivery");
    const head = element("div", "head");
    head.append(element("span", "badge status"), element("code", "event"), element("time", "created"));
    const details = element("div", "meta muted");
    details.append(element("span", "endpoint url"), element("span", "attempt-count"), element("span", "next"));
    const actions = element("div", "actions");
    // What the toggle shows: the body sent, and every attempt with its response.
    const more = element("div", "details");
    more.id = nextId("details");
    more.hidden = true;
    more.append(
      element("h4", "", "Payload"),
      element("pre", "payload"),
      element("h4", "", "Attempts"),
      element("ol", "attempts"),
    );
    const toggle = button("attempts", "Show details");
    toggle.setAttribute("aria-expanded", "false");
    toggle.setAttribute("aria-controls", more.id);
    actions.append(toggle, button("redeliver", "Replay"));
    item.append(head, details, actions, more);
    return item;
  }

  function updateDeliveryItem(item, delivery) {
    const status = String(delivery.status || "");
    item.dataset.status = status;
    item.dataset.subscription = String(delivery.subscription_id || "");
    item.dataset.event = String(delivery.event_type || "");
    const count = Number(delivery.attempts) || 0;
    item.dataset.attempts = String(count);
    setText(item.querySelector(".badge.status"), STATUS_TEXT[status] || status);
    setText(item.querySelector(".event"), String(delivery.event_type || ""));
    setTime(item.querySelector("time.created"), delivery.created_at);
    const endpoint = state.endpoints.get(delivery.subscription_id);
    setText(item.querySelector(".endpoint"), endpoint ? String(endpoint.url || "") : String(delivery.subscription_id || ""));
    setText(item.querySelector(".attempt-count"), count === 1 ? "1 attempt" : `${count} attempts`);
    const next = item.querySelector(".next");
    if (delivery.next_attempt_at && status !== "delivered" && status !== "exhausted" && status !== "skipped") {
      const date = new Date(delivery.next_attempt_at);
      setText(next, `Next attempt ${Number.isNaN(date.getTime()) ? delivery.next_attempt_at : date.toLocaleString()}`);
    } else {
      setText(next, "");
    }
    const busy = status === "pending" || status === "in_flight";
    const replay = item.querySelector('[data-action="redeliver"]');
    if (busy && document.activeElement === replay) item.querySelector('[data-action="attempts"]').focus();
    replay.hidden = busy;
    replay.classList.toggle("primary", status === "failed" || status === "exhausted");
  }

  async function onDeliveryAction(event) {
    const target = event.target.closest("button[data-action]");
    const item = event.target.closest("[data-delivery]");
    if (!target || !item) return;
    const id = item.getAttribute("data-delivery");
    switch (target.dataset.action) {
      case "attempts": {
        const open = target.getAttribute("aria-expanded") !== "true";
        if (!open) {
          state.openAttempts.delete(id);
          target.setAttribute("aria-expanded", "false");
          target.textContent = "Show details";
          item.querySelector(".details").hidden = true;
          break;
        }
        await act(target, async () => {
          state.openAttempts.add(id);
          target.setAttribute("aria-expanded", "true");
          target.textContent = "Hide details";
          await Promise.all([loadPayload(item, id), loadAttempts(item, id)]);
          item.querySelector(".details").hidden = false;
        });
        break;
      }
      case "redeliver":
        await act(target, async () => {
          const delivery = await api("POST", `deliveries/${encode(id)}/redeliver`, {});
          if (delivery && delivery.id) upsertDelivery(delivery);
          announce("Replay queued: the event will be sent again.");
          await loadDeliveries();
        });
        break;
      default:
        break;
    }
  }

  // The body sent never changes: read once.
  async function loadPayload(item, id) {
    const pre = item.querySelector(".payload");
    if (pre.dataset.loaded === "true") return;
    const answer = await api("GET", `deliveries/${encode(id)}`);
    const payload = answer ? answer.payload : null;
    if (payload === null || payload === undefined) {
      pre.textContent = "(no longer kept)";
    } else {
      pre.textContent = typeof payload === "string" ? payload : JSON.stringify(payload, null, 2);
    }
    pre.dataset.loaded = "true";
  }

  async function loadAttempts(item, id) {
    const answer = await api("GET", `deliveries/${encode(id)}/attempts`);
    const items = Array.isArray(answer && answer.items) ? answer.items : [];
    const list = item.querySelector(".attempts");
    list.dataset.attemptsFor = id;
    list.replaceChildren(...items.map(attemptItem));
    if (items.length === 0) list.append(element("li", "muted", "No attempt yet."));
    list.dataset.count = String(items.length);
  }

  function attemptItem(attempt) {
    const item = element("li", "attempt");
    item.dataset.attempt = String(attempt.number);
    item.dataset.succeeded = String(Boolean(attempt.succeeded));
    const head = element("div", "head");
    head.append(element("strong", "", `Attempt ${attempt.number}`));
    let outcome;
    if (typeof attempt.status_code === "number") {
      item.dataset.statusCode = String(attempt.status_code);
      outcome = `HTTP ${attempt.status_code}`;
    } else {
      outcome = attempt.error ? String(attempt.error) : "no answer";
    }
    if (attempt.error) item.dataset.error = String(attempt.error);
    head.append(element("span", "outcome", outcome));
    const at = element("time", "muted");
    setTime(at, attempt.at);
    head.append(at);
    if (typeof attempt.latency_ms === "number") head.append(element("span", "muted", `${attempt.latency_ms} ms`));
    item.append(head);
    if (attempt.error_message) item.append(element("p", "error-message", String(attempt.error_message)));
    const body = typeof attempt.response_body === "string" ? attempt.response_body : "";
    if (body) {
      item.append(element("div", "muted", "Response body"), element("pre", "response-body", body));
    } else {
      item.append(element("div", "muted response-body-empty", "Empty response body"));
    }
    return item;
  }

  // Re-reads the attempts shown, for deliveries whose attempt count changed.
  async function refreshOpenAttempts(all) {
    const calls = [];
    for (const id of state.openAttempts) {
      const item = $("deliveries").querySelector(`[data-delivery="${CSS.escape(id)}"]`);
      if (!item) {
        state.openAttempts.delete(id);
        continue;
      }
      const list = item.querySelector(".attempts");
      if (all || list.dataset.count !== item.dataset.attempts) calls.push(loadAttempts(item, id));
    }
    await Promise.all(calls);
  }

  // ---- light polling, while something is on its way ----

  function stopPolling() {
    if (state.pollTimer !== null) clearTimeout(state.pollTimer);
    state.pollTimer = null;
  }

  function schedulePoll() {
    stopPolling();
    if (document.visibilityState === "hidden") return;
    let wait = null;
    const now = Date.now();
    for (const delivery of state.deliveries) {
      if (delivery.status === "pending" || delivery.status === "in_flight") {
        wait = 1500;
        break;
      }
      if (delivery.status === "failed" && delivery.next_attempt_at) {
        const due = new Date(delivery.next_attempt_at).getTime() - now + 500;
        const soon = Math.min(Math.max(due, 1500), 30000);
        wait = wait === null ? soon : Math.min(wait, soon);
      }
    }
    if (wait === null) return;
    const session = state.session;
    state.pollTimer = setTimeout(() => {
      state.pollTimer = null;
      if (session !== state.session) return;
      loadDeliveries().catch(showError);
    }, wait);
  }

  // ---- wiring ----

  function start() {
    $("sign-in").addEventListener("submit", signIn);
    $("sign-out").addEventListener("click", signOut);
    $("new-endpoint").addEventListener("submit", createEndpoint);
    $("endpoints").addEventListener("click", onEndpointAction);
    $("deliveries").addEventListener("click", onDeliveryAction);
    $("copy-secret").addEventListener("click", copySecret);
    $("hide-secret").addEventListener("click", () => hideSecret(true));
    $("refresh").addEventListener("click", (event) => act(event.currentTarget, async () => {
      await Promise.all([loadEndpoints(), state.eventTypesLoaded ? null : loadEventTypes()]);
      await loadDeliveries();
      await refreshOpenAttempts(true);
      document.body.dataset.state = "ready";
      announce("Up to date.");
    }));
    $("more-deliveries").addEventListener("click", (event) => act(event.currentTarget, () => loadDeliveries(true)));
    for (const id of ["delivery-endpoint", "delivery-status"]) {
      $(id).addEventListener("change", () => resetDeliveries().catch(showError));
    }
    for (const id of ["title", "deliveries-heading", "endpoints-heading"]) $(id).tabIndex = -1;
    document.addEventListener("visibilitychange", () => {
      if (document.visibilityState === "visible" && $("app").hidden === false) {
        loadDeliveries().catch(showError);
      } else {
        stopPolling();
      }
    });
    if (authHeader && !credential()) showSignIn();
    else enterApp();
  }

  start();
})();
