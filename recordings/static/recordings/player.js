// Recording players: ask the server for a playback session for the chosen purpose, then
// play (or download) the audio it answers with. Refusals are shown as the server words them.
(function () {
  "use strict";

  function start(player, download) {
    const controls = player.querySelector(".player-controls");
    const error = player.querySelector(".player-error");
    const audio = player.querySelector(".player-audio");
    const data = new FormData();
    controls.querySelectorAll("select, input").forEach(function (field) {
      data.set(field.name, field.value);
    });
    if (download) data.set("download", "1");
    error.hidden = true;
    return fetch(player.dataset.startUrl, {
      method: "POST",
      body: data,
      credentials: "same-origin",
      headers: { "X-CSRFToken": data.get("csrfmiddlewaretoken") },
    })
      .then(function (response) {
        return response.json().then(function (body) {
          if (!response.ok) throw new Error(body.error || response.statusText);
          return body;
        });
      })
      .then(function (body) {
        if (download) {
          const link = document.createElement("a");
          link.href = body.url;
          link.download = "";
          document.body.appendChild(link);
          link.click();
          link.remove();
          return;
        }
        audio.src = body.url;
        audio.dataset.event = body.event;
        return audio.play();
      })
      .catch(function (failure) {
        error.textContent = failure.message;
        error.hidden = false;
      });
  }

  function bind(player) {
    if (player.dataset.bound) return;
    player.dataset.bound = "1";
    const play = player.querySelector(".player-play");
    const download = player.querySelector(".player-download");
    if (play) play.addEventListener("click", function () { start(player, false); });
    if (download) download.addEventListener("click", function () { start(player, true); });
    // A new purpose or side needs a new session.
    player.querySelectorAll("select").forEach(function (select) {
      select.addEventListener("change", function () {
        const audio = player.querySelector(".player-audio");
        audio.pause();
        audio.removeAttribute("src");
      });
    });
  }

  document.querySelectorAll(".recording-player").forEach(bind);
})();
