# Generates pretok-regex-cases.json: random strings over an alphabet of
# class-boundary characters (marks, Lm, Lt, non-BMP letters and digits, Unicode
# spaces, contractions incl. long s), split by the o200k regex with the
# backtracking `regex` module, as an independent check of the hand scanner.
#   python3 gen-pretok-cases.py 1000 7 > pretok-regex-cases.json
import regex, random, json, sys
pat = regex.compile("|".join([
    r"""[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?""",
    r"""[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?""",
    r"""\p{N}{1,3}""",
    r""" ?[^\s\p{L}\p{N}]+[\r\n/]*""",
    r"""\s*[\r\n]+""",
    r"""\s+(?!\S)""",
    r"""\s+""",
]))
alpha = list("aAbZsStTrReEvVmMlLdD'''  ' \t\r\n/.,!-_09") + ["\u00a0","\u2009","\u3000","\u0085","\u2028","\u000b","\u000c","\u001c","\ufeff","\u200d",
  "\u0301","\u093f","\u20dd","\u02b0","\u3005","\u01c5","中","ا","é","ß","ſ","É","²","Ⅻ","٣","🙂","\U0001D400","\U00010428","\U0001D7D9","\u0130","\u212a","ﬀ"]
random.seed(int(sys.argv[2]) if len(sys.argv)>2 else 1)
cases=[]
for i in range(int(sys.argv[1])):
    s="".join(random.choice(alpha) for _ in range(random.randint(1,40)))
    pieces=pat.findall(s)
    assert "".join(pieces)==s
    cases.append({"text":s,"pieces":pieces})
json.dump(cases, sys.stdout, ensure_ascii=True)
