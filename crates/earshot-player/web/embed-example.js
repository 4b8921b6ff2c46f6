// The embedding example's own script: a file, since the player's CSP allows no inline scripts.
const p = document.getElementById("p");
document.getElementById("go").addEventListener("click", () => {
  p.setAttribute("callref", document.getElementById("ref").value.trim());
  p.play();
});
p.addEventListener("earshot-state", (e) => console.log("player state:", e.detail.state));
