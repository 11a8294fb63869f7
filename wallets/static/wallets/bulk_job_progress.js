// The job page's live progress: polls the job's progress URL every second while it is PENDING or
// RUNNING, moves the bar and the "n of N (x%) · failed f" text, and reloads the page once when the
// job is DONE, FAILED or CANCELLED (to show its final state and, if it failed, the Retry button).
"use strict";
{
    const FINISHED = ["DONE", "FAILED", "CANCELLED"];  // CANCELLED: promo-code batches (same bar)
    const LABELS = {PENDING: "Pending", RUNNING: "Running", DONE: "Done", FAILED: "Failed", CANCELLED: "Cancelled"};

    function render(panel, progress) {
        const bar = panel.querySelector(".bulk-job-bar");
        bar.querySelector("span").style.width = progress.percent + "%";
        bar.setAttribute("aria-valuenow", progress.percent);
        bar.classList.toggle("failed", progress.status === "FAILED");
        panel.querySelector("[data-field=text]").textContent = progress.text;
        const status = panel.querySelector("[data-field=status]");
        status.textContent = LABELS[progress.status] || progress.status;
        status.className = "bulk-job-status bulk-job-status-" + progress.status.toLowerCase();
        const report = document.getElementById("bulk-job-error-report");
        if (report && progress.failed > 0) {
            report.hidden = false;
        }
    }

    function poll(panel, delay) {
        fetch(panel.dataset.progressUrl, {headers: {Accept: "application/json"}, credentials: "same-origin"})
            .then((response) => (response.ok ? response.json() : Promise.reject(response.status)))
            .then((progress) => {
                render(panel, progress);
                if (FINISHED.includes(progress.status)) {
                    window.location.reload();
                } else {
                    window.setTimeout(() => poll(panel, 1000), 1000);
                }
            })
            .catch(() => {
                // A slow or failed request (a restart, a lost connection): try again, less often.
                const next = Math.min(delay * 2, 10000);
                window.setTimeout(() => poll(panel, next), next);
            });
    }

    function start() {
        const panel = document.getElementById("bulk-job-progress");
        if (panel && !FINISHED.includes(panel.dataset.status)) {
            window.setTimeout(() => poll(panel, 1000), 1000);
        }
    }

    if (document.readyState === "loading") {
        document.addEventListener("DOMContentLoaded", start);
    } else {
        start();
    }
}
