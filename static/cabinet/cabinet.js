/* Beetel Integration: toasts, copy buttons and the unsaved-changes warning. Everything here is
   an enhancement: every form also works without JavaScript. */
(function () {
    "use strict";

    function showToast(message, level) {
        var box = document.getElementById("toasts");
        if (!box || !message) { return; }
        var toast = document.createElement("div");
        toast.className = "toast toast-" + (level || "success");
        toast.setAttribute("role", "status");
        toast.textContent = message;
        box.appendChild(toast);
        setTimeout(function () { toast.remove(); }, 4000);
    }

    // Server-rendered toasts (after a redirect) fade away too.
    document.addEventListener("DOMContentLoaded", function () {
        document.querySelectorAll("#toasts .toast").forEach(function (toast) {
            setTimeout(function () { toast.remove(); }, 4000);
        });
    });

    // HX-Trigger: {"toast": {"message": "Сохранено", "level": "success"}}
    document.body.addEventListener("toast", function (event) {
        var detail = event.detail || {};
        showToast(detail.message, detail.level);
    });

    // Copy buttons: <button data-copy="#element-id">.
    document.addEventListener("click", function (event) {
        var button = event.target.closest("[data-copy]");
        if (!button) { return; }
        var source = document.querySelector(button.getAttribute("data-copy"));
        if (!source) { return; }
        var text = (source.value || source.textContent || "").trim();
        var done = function () { showToast(button.getAttribute("data-copied") || "OK"); };
        if (navigator.clipboard && window.isSecureContext) {
            navigator.clipboard.writeText(text).then(done);
        } else {
            var range = document.createRange();
            range.selectNodeContents(source);
            var selection = window.getSelection();
            selection.removeAllRanges();
            selection.addRange(range);
            document.execCommand("copy");
            done();
        }
    });

    // Forms marked data-confirm ask before an irreversible action (rotate a key, revoke links).
    document.addEventListener("submit", function (event) {
        var form = event.target.closest("form[data-confirm]");
        if (form && !window.confirm(form.getAttribute("data-confirm"))) { event.preventDefault(); }
    });

    // Forms marked data-unsaved-warning warn before the page is left with unsaved changes. A
    // form stays "unsaved" until the server accepted it: a refused save (400) keeps the warning.
    // data-unsaved-on-load: the form arrives with choices not saved yet (suggested managers).
    var dirty = new Set();
    function formKey(form) { return form.id || form; }
    function markLoaded(root) {
        (root || document).querySelectorAll("form[data-unsaved-on-load]").forEach(function (form) {
            dirty.add(formKey(form));
        });
    }
    document.addEventListener("DOMContentLoaded", function () { markLoaded(document); });
    document.body.addEventListener("htmx:load", function (event) { markLoaded(event.target); });
    document.addEventListener("change", function (event) {
        var form = event.target.closest("form[data-unsaved-warning]");
        if (form) { dirty.add(formKey(form)); }
    });
    document.addEventListener("submit", function (event) {
        // An HTMX form's submit is taken over by htmx (defaultPrevented): wait for its answer.
        var form = event.target.closest("form[data-unsaved-warning]");
        if (form && !event.defaultPrevented) { dirty.delete(formKey(form)); }
    });
    // beforeSwap, not afterRequest: after an outerHTML swap the sending form is detached and
    // its events no longer reach the body.
    document.body.addEventListener("htmx:beforeSwap", function (event) {
        var detail = event.detail;
        var elt = (detail.requestConfig && detail.requestConfig.elt) || detail.elt;
        var form = elt && elt.closest && elt.closest("form[data-unsaved-warning]");
        var xhr = detail.xhr;
        if (form && xhr && xhr.status >= 200 && xhr.status < 300) { dirty.delete(formKey(form)); }
    });
    // The server sends the page elsewhere (expired session: HX-Redirect to the login page).
    document.body.addEventListener("htmx:beforeOnLoad", function (event) {
        var xhr = event.detail.xhr;
        if (xhr && xhr.getResponseHeader("HX-Redirect")) { dirty.clear(); }
    });
    window.addEventListener("beforeunload", function (event) {
        if (dirty.size) {
            event.preventDefault();
            event.returnValue = "";
        }
    });

    // «Предложено по телефону…» belongs to the suggested manager only: hide it once another
    // one is picked by hand (and show it again if the suggestion is picked back).
    document.addEventListener("change", function (event) {
        var select = event.target;
        if (!select.matches || !select.matches("select[name]")) { return; }
        var hint = document.querySelector('[data-suggestion-for="' + select.name + '"]');
        if (hint) { hint.hidden = select.value !== hint.getAttribute("data-suggested"); }
    });
})();
