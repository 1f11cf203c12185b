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

    // Forms marked data-unsaved-warning warn before the page is left with unsaved changes.
    var dirty = new Set();
    document.addEventListener("change", function (event) {
        var form = event.target.closest("form[data-unsaved-warning]");
        if (form) { dirty.add(form.id || form); }
    });
    document.addEventListener("submit", function (event) {
        var form = event.target.closest("form[data-unsaved-warning]");
        if (form) { dirty.delete(form.id || form); }
    });
    document.body.addEventListener("htmx:beforeRequest", function (event) {
        var form = event.detail.elt.closest && event.detail.elt.closest("form[data-unsaved-warning]");
        if (form) { dirty.delete(form.id || form); }
    });
    window.addEventListener("beforeunload", function (event) {
        if (dirty.size) {
            event.preventDefault();
            event.returnValue = "";
        }
    });
})();
