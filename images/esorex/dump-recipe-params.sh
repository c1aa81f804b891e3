#!/bin/sh
# Write the parameter list of every installed recipe, as esorex itself reports it, to DIR/<recipe>.json
# (esorex --create-config=<file>.json: name, valtype, default value, range or enum, description).
# DIR/recipes.txt lists the recipes. The operator and the config validation read these files.
set -eu
out=$1
mkdir -p "$out"
cd "$out"
esorex --recipes 2>/dev/null | sed -n 's/^  \(muse_[a-z_]*\) *:.*/\1/p' | sort -u > recipes.txt
if [ ! -s recipes.txt ]; then
    echo "dump-recipe-params.sh: esorex lists no MUSE recipe" >&2
    exit 3
fi
while read -r recipe; do
    esorex --log-dir=/tmp --create-config="$out/$recipe.json" "$recipe" > /dev/null
    test -s "$recipe.json"
done < recipes.txt
rm -f ./*.bak
printf '%s recipes, parameter lists in %s\n' "$(wc -l < recipes.txt)" "$out"
