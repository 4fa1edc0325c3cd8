// The review desk's only script: select-all for bulk labels, and a job page that follows its job.
"use strict";
(function () {
  function csrf() {
    var match = document.cookie.match(/(?:^|; )ai_router_desk_csrf=([^;]+)/);
    return match ? decodeURIComponent(match[1]) : "";
  }
  document.addEventListener("DOMContentLoaded", function () {
    var all = document.getElementById("all");
    if (all) {
      all.addEventListener("change", function () {
        document.querySelectorAll("input[name=ids]").forEach(function (box) { box.checked = all.checked; });
      });
    }
    var job = document.getElementById("job");
    if (!job) { return; }
    var id = job.getAttribute("data-job");
    function follow() {
      fetch("/review/api/jobs/" + encodeURIComponent(id), {credentials: "same-origin", headers: {"X-CSRF-Token": csrf()}})
        .then(function (response) { return response.ok ? response.json() : null; })
        .then(function (state) {
          if (!state) { return; }
          document.getElementById("job-state").textContent = state.status;
          var bar = document.getElementById("job-bar");
          if (state.total) {
            bar.max = state.total;
            bar.value = Math.min(state.replayed || 0, state.total);
            document.getElementById("job-progress").textContent = (state.replayed || 0) + " of " + state.total + " examples replayed";
          }
          document.getElementById("job-log").textContent = state.log_tail || "";
          if (state.link) {
            document.getElementById("job-result").href = state.link;
            document.getElementById("job-link").hidden = false;
          }
          if (state.status === "queued" || state.status === "running") { window.setTimeout(follow, 1000); }
          else if (state.status === "done") { bar.max = 1; bar.value = 1; }
        })
        .catch(function () { window.setTimeout(follow, 3000); });
    }
    follow();
  });
})();
