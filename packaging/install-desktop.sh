#!/bin/sh
# Put HLM Explorer in this user's desktop menu (no administrator rights needed).
#
#   ./install-desktop.sh               register the program in this folder (menu entry and icon)
#   ./install-desktop.sh --uninstall   remove them again
#
# Run it from the unpacked program folder (dist/hlm-explorer), where it sits beside the
# executable. It writes $XDG_DATA_HOME/applications/hlm-explorer.desktop, with Exec= pointing at
# this folder's executable, and the icon to $XDG_DATA_HOME/icons/hicolor/256x256/apps/
# ($XDG_DATA_HOME defaults to ~/.local/share). Move the folder later? Run it again.
set -eu

here=$(cd "$(dirname "$0")" && pwd)
data_home=${XDG_DATA_HOME:-$HOME/.local/share}
applications="$data_home/applications"
icons="$data_home/icons/hicolor/256x256/apps"
entry="$applications/hlm-explorer.desktop"
icon="$icons/hlm-explorer.png"

refresh_caches() {
    # Desktops notice new entries by themselves; these only speed it up where they exist.
    if command -v update-desktop-database >/dev/null 2>&1; then update-desktop-database "$applications" 2>/dev/null || true; fi
    if command -v gtk-update-icon-cache >/dev/null 2>&1; then gtk-update-icon-cache -q -t "$data_home/icons/hicolor" 2>/dev/null || true; fi
}

if [ "${1:-}" = "--uninstall" ]; then
    rm -f "$entry" "$icon"
    refresh_caches
    echo "Removed $entry and $icon"
    exit 0
fi
if [ $# -gt 0 ]; then
    echo "usage: $0 [--uninstall]" >&2
    exit 2
fi

executable="$here/hlm-explorer"
resources="$here/_internal/resources"
if [ ! -x "$executable" ] || [ ! -f "$resources/hlm-explorer.desktop" ]; then
    echo "error: run this script from the packaged program's folder (it needs hlm-explorer and _internal/resources beside it)" >&2
    exit 2
fi

mkdir -p "$applications" "$icons"
cp "$resources/icon.png" "$icon"
# The desktop entry names the executable by its full path, quoted as the Desktop Entry spec asks.
quoted=$(printf '%s' "$executable" | sed 's/[\\"`$]/\\&/g')
while IFS= read -r line; do
    case $line in
        Exec=*) printf 'Exec="%s"\n' "$quoted" ;;
        Icon=*) printf 'Icon=%s\n' "$icon" ;;
        *) printf '%s\n' "$line" ;;
    esac
done < "$resources/hlm-explorer.desktop" > "$entry.tmp"
mv "$entry.tmp" "$entry"
chmod 644 "$entry"
refresh_caches
echo "Installed $entry (menu entry \"HLM Explorer\") and $icon"
