// The countdown of a recording paused for a card number (通話中): each second the time left,
// and at zero the page resumes the recording itself (the server does too, every 15 seconds,
// for a page that is closed).
(function () {
  "use strict";
  function tick(timer) {
    var until = Date.parse(timer.dataset.until);
    var left = Math.max(0, Math.ceil((until - Date.now()) / 1000));
    timer.querySelector(".card-pause-left").textContent = String(left);
    if (left === 0 && !timer.dataset.sent) {
      timer.dataset.sent = "1";
      var button = timer.parentElement.querySelector(".card-pause-end");
      if (button) {
        button.click();
      }
    }
  }
  document.querySelectorAll(".card-pause[data-until]").forEach(function (timer) {
    tick(timer);
    window.setInterval(function () {
      tick(timer);
    }, 1000);
  });
})();
