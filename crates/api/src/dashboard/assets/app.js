// shipwatch dashboard: the key page's status moves from "Validating" to its outcome without a
// reload, and a file named AuthKey_<KEYID>.p8 fills an empty Key ID field.
(function () {
  "use strict";
  var status = document.querySelector("[data-status-url]");
  if (status && status.getAttribute("data-status") === "validating") {
    var poll = function () {
      fetch(status.getAttribute("data-status-url"), { credentials: "same-origin", headers: { Accept: "application/json" } })
        .then(function (r) { return r.ok ? r.json() : null; })
        .then(function (key) {
          if (!key) { setTimeout(poll, 3000); return; }
          if (key.status === "validating") { setTimeout(poll, 1000); return; }
          status.textContent = key.label;
          status.setAttribute("data-status", key.status);
          status.className = "status status-" + key.status;
          var reason = document.getElementById("status-message");
          if (reason) { reason.textContent = key.message || ""; }
        })
        .catch(function () { setTimeout(poll, 3000); });
    };
    setTimeout(poll, 700);
  }
  var file = document.getElementById("private_key");
  var keyId = document.getElementById("key_id");
  if (file && keyId) {
    file.addEventListener("change", function () {
      var name = file.files && file.files[0] ? file.files[0].name : "";
      var match = /^AuthKey_([A-Z0-9]{10})\.p8$/.exec(name);
      if (match && !keyId.value) { keyId.value = match[1]; }
    });
  }
})();
