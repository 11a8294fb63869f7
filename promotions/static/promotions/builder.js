// The promotion builder's page logic (docs/marketer-guide.md, "The promotion builder"). No build step.
// Shows the parts the chosen condition and reward need, disables rewards the condition cannot take,
// asks the admin's preview endpoint (the same Python the save runs) for the sentence, the JSON and what
// is wrong, and fills the value pickers from the values the org has seen.
(function () {
  "use strict";

  function ready(fn) {
    if (document.readyState !== "loading") fn();
    else document.addEventListener("DOMContentLoaded", fn);
  }

  ready(function () {
    var root = document.getElementById("promotion-builder");
    if (!root) return;
    var form = root.closest("form");
    var PRODUCT_CONDITIONS = ["PRODUCT", "COMBO_PRODUCT", "PAYMENT_MODE_SCOPE", "PAYMENT_MODE_COMBO_PRODUCT"];
    var COMBOS = ["COMBO_PRODUCT", "PAYMENT_MODE_COMBO_PRODUCT"];
    var TARGETED = ["PRODUCT_BASED:PERCENTAGE", "PRODUCT_BASED:ABSOLUTE", "PRODUCT_BASED:FIXED_PRICE",
                    "FREE_PRODUCT", "FIXED_PRICE"];

    function val(name) {
      var el = form.elements[name];
      return el ? el.value : "";
    }
    function show(block, visible) {
      root.querySelectorAll('[data-block="' + block + '"]').forEach(function (el) {
        el.hidden = !visible;
      });
    }
    function showGroups(kind, visible, many) {
      root.querySelectorAll('[data-group="' + kind + '"]').forEach(function (el) {
        var index = Number(el.getAttribute("data-index"));
        el.hidden = !visible || (!many && index > 0);
        el.querySelectorAll(".builder-criterion").forEach(function (row) {
          var entity = row.querySelector("select[name$='_entity']");
          var attribute = row.querySelector(".builder-attribute");
          if (attribute) attribute.hidden = !entity || entity.value !== "ATTRIBUTE";
        });
        var kpi = el.querySelector("select[name$='_kpi']");
        var threshold = el.querySelector(".builder-threshold");
        if (threshold) threshold.hidden = !kpi || kpi.value === "NONE";
      });
    }

    function refresh() {
      var cond = val("cond_type"), nested = val("tender_nested"), reward = val("reward");
      var perUnit = reward === "PER_UNIT";
      var inner = perUnit ? val("pu_reward") : reward;
      show("cart", cond === "CART" || (cond === "TENDER" && nested === "CART"));
      show("tender", cond === "TENDER");
      show("pay", cond.indexOf("PAYMENT_MODE") === 0);
      var groups = PRODUCT_CONDITIONS.indexOf(cond) >= 0 || (cond === "TENDER" && nested === "PRODUCT");
      show("cgroups", groups);
      showGroups("cg", groups, COMBOS.indexOf(cond) >= 0);
      // A tender reward needs a tender condition: impossible to pick otherwise.
      var rewardSelect = form.elements.reward;
      Array.prototype.forEach.call(rewardSelect.options, function (option) {
        option.disabled = option.value.indexOf("TENDER:") === 0 && cond !== "TENDER";
      });
      // A fixed price per group needs groups of units.
      Array.prototype.forEach.call(form.elements.pu_reward.options, function (option) {
        option.disabled = option.value === "FIXED_PRICE" && val("pu_kpi") === "AMOUNT";
      });
      show("perunit", perUnit);
      show("value", inner !== "FREE_PRODUCT");
      show("freeqty", inner === "FREE_PRODUCT");
      var targeted = perUnit || TARGETED.indexOf(reward) >= 0;
      show("target", targeted);
      var other = targeted && val("target") === "OTHER";
      show("targettype", other);
      show("tcart", other && val("target_type") === "CART");
      var tgroups = other && val("target_type") !== "CART";
      show("tgroups", tgroups);
      showGroups("tg", tgroups, val("target_type") === "COMBO_PRODUCT");
      show("store", val("store_type") !== "");
      show("time", val("time_repeat") !== "");
      show("days", val("time_repeat") === "WEEKS");
      // Earning criteria: only an Earning promotion is earned by them; items only in a transaction.
      var typeEl = form.elements.type;
      var kind = typeEl ? typeEl.value : root.getAttribute("data-promotion-type");
      var source = val("ec_from");
      document.getElementById("earning-not-earning").hidden = !kind || kind === "EARNING";
      show("earning", source !== "");
      show("ecactivity", source === "ACTIVITY");
      show("ecmilestone", source === "MILESTONE");
      Array.prototype.forEach.call(form.elements.ec_events.options, function (option) {
        option.disabled = option.value === "SKU" && val("ec_event") !== "TransactionAdd";
      });
      show("ecsku", source === "ACTIVITY" && val("ec_events") === "SKU");
    }

    var summary = document.getElementById("builder-summary");
    var problems = document.getElementById("builder-problems");
    var jsonView = document.getElementById("builder-json");
    var earningSummary = document.getElementById("earning-summary");
    var pending = null, sequence = 0;

    function preview() {
      var body = new FormData(form);
      var mine = ++sequence;
      fetch(root.getAttribute("data-preview-url"), {
        method: "POST", body: body, credentials: "same-origin",
        headers: { "X-CSRFToken": (form.elements.csrfmiddlewaretoken || {}).value || "" }
      }).then(function (response) { return response.json(); }).then(function (data) {
        if (mine !== sequence) return;  // an older answer arriving late
        summary.textContent = data.summary || "Not complete yet: see below.";
        problems.innerHTML = "";
        (data.errors || []).forEach(function (error) {
          var item = document.createElement("li");
          item.textContent = error.message;
          problems.appendChild(item);
        });
        jsonView.textContent = JSON.stringify({
          condition: data.condition, action: data.action, storeCriteria: data.storeCriteria,
          timeCriteria: data.timeCriteria, customFieldValues: data.customFieldValues,
          earningCriteria: data.earningCriteria
        }, null, 2);
        earningSummary.textContent = data.earningSummary || "";
        root.setAttribute("data-previewed", String(mine));
      }).catch(function () { /* the save still checks everything */ });
    }
    function changed() {
      refresh();
      clearTimeout(pending);
      pending = setTimeout(preview, 250);
    }
    root.addEventListener("change", changed);
    if (form.elements.type) form.elements.type.addEventListener("change", changed);
    root.addEventListener("input", function (event) {
      if (!event.target.classList.contains("builder-search-input")) changed();
    });

    // Value pickers: type to search the values the org has seen; click one to add it as a line.
    root.querySelectorAll(".builder-search-input").forEach(function (input) {
      var box = input.parentNode.querySelector(".builder-suggestions");
      var target = document.getElementById(input.getAttribute("data-for"));
      var timer = null, asked = 0;
      function search() {
        var mine = ++asked;
        var entityEl = document.getElementById(input.getAttribute("data-entity-from"));
        var attributeEl = document.getElementById(input.getAttribute("data-attribute-from") || "");
        var url = new URL(root.getAttribute("data-values-url"), window.location.href);
        url.searchParams.set("entity", entityEl ? (entityEl.value || "STORE") : "SKU");
        url.searchParams.set("q", input.value);
        if (attributeEl) url.searchParams.set("attribute", attributeEl.value);
        fetch(url, { credentials: "same-origin" }).then(function (r) { return r.json(); }).then(function (data) {
          if (mine !== asked) return;  // a later search, or a value picked, meanwhile
          box.innerHTML = "";
          (data.values || []).forEach(function (item) {
            var button = document.createElement("button");
            button.type = "button";
            button.className = "builder-suggestion";
            button.textContent = item.label;
            button.addEventListener("click", function () {
              var lines = target.value.split("\n").filter(function (line) { return line.trim() !== ""; });
              if (lines.indexOf(item.value) < 0) lines.push(item.value);
              target.value = lines.join("\n");
              clearTimeout(timer);
              asked++;
              box.innerHTML = "";
              input.value = "";
              changed();
            });
            box.appendChild(button);
          });
        });
      }
      input.addEventListener("input", function () { clearTimeout(timer); timer = setTimeout(search, 200); });
      input.addEventListener("focus", search);
      input.addEventListener("keydown", function (event) {
        if (event.key === "Enter") {  // Enter adds what is typed (paste-a-list works in the box itself)
          event.preventDefault();
          if (input.value.trim()) {
            target.value = (target.value.trim() ? target.value.replace(/\s+$/, "") + "\n" : "") + input.value;
            input.value = "";
            clearTimeout(timer);
            asked++;
            box.innerHTML = "";
            changed();
          }
        }
      });
    });

    refresh();
    preview();
  });
})();
