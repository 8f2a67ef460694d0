// The simulator of simulator.h: draw parameters, ray-shoot every (sub-)pixel through the SIE, the
// shear and the subhalos, evaluate the Sersic source, convolve with the PSF, add noise as
// DeepLenseSim's Model I did, and count photons.
#include "data/lens/simulator.h"

#include <omp.h>

#include <algorithm>
#include <cmath>
#include <sstream>
#include <stdexcept>

#include "data/lens/cosmology.h"
#include "data/lens/profiles.h"

namespace halo::data::lens {

// ---- random numbers -------------------------------------------------------------------------------
namespace {
uint64_t splitmix64(uint64_t& x) {
  uint64_t z = (x += 0x9E3779B97F4A7C15ULL);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  return z ^ (z >> 31);
}
}  // namespace

Rng::Rng(uint64_t seed, uint64_t index, uint64_t stream) {
  uint64_t s = seed;
  state_ = splitmix64(s) ^ (index * 0xD1B54A32D192ED03ULL);
  s = state_ + stream;
  state_ = splitmix64(s) + stream * 0x8CB92BA72F3D8DD7ULL;
}
uint64_t Rng::next_u64() { return splitmix64(state_); }
double Rng::uniform() { return (next_u64() >> 11) * 0x1.0p-53; }
double Rng::uniform(double lo, double hi) { return lo + (hi - lo) * uniform(); }
double Rng::normal() {
  if (has_spare_) {
    has_spare_ = false;
    return spare_;
  }
  double u1;
  do u1 = uniform(); while (u1 <= 0);
  const double u2 = uniform();
  const double r = std::sqrt(-2 * std::log(u1));
  spare_ = r * std::sin(2 * M_PI * u2);
  has_spare_ = true;
  return r * std::cos(2 * M_PI * u2);
}
int64_t Rng::poisson(double lam) {
  if (!(lam > 0)) return 0;
  if (lam < 10) {  // multiplication of uniforms (Knuth)
    const double L = std::exp(-lam);
    double p = 1;
    int64_t k = 0;
    do {
      ++k;
      p *= uniform();
    } while (p > L);
    return k - 1;
  }
  // PTRS: transformed rejection with squeeze (Hormann 1993).
  const double slam = std::sqrt(lam), loglam = std::log(lam);
  const double b = 0.931 + 2.53 * slam, a = -0.059 + 0.02483 * b;
  const double inv_alpha = 1.1239 + 1.1328 / (b - 3.4), vr = 0.9277 - 3.6224 / (b - 2);
  for (;;) {
    const double U = uniform() - 0.5, V = uniform();
    const double us = 0.5 - std::abs(U);
    const double k = std::floor((2 * a / us + b) * U + lam + 0.43);
    if (us >= 0.07 && V <= vr) return static_cast<int64_t>(k);
    if (k < 0 || (us < 0.013 && V > us)) continue;
    if (std::log(V) + std::log(inv_alpha) - std::log(a / (us * us) + b) <= -lam + k * loglam - std::lgamma(k + 1))
      return static_cast<int64_t>(k);
  }
}

// ---- PSF --------------------------------------------------------------------------------------------
void gaussian_filter(std::vector<double>& img, int h, int w, double sd, double truncation) {
  if (sd <= 0) return;
  const int r = static_cast<int>(truncation * sd + 0.5);
  std::vector<double> k(2 * r + 1);
  double sum = 0;
  for (int i = -r; i <= r; ++i) sum += k[i + r] = std::exp(-0.5 * i * i / (sd * sd));
  for (double& v : k) v /= sum;
  std::vector<double> tmp(img.size());
  // Along rows (axis 0) then columns (axis 1), border pixels repeated (mode 'nearest').
  for (int i = 0; i < h; ++i)
    for (int j = 0; j < w; ++j) {
      double s = 0;
      for (int t = -r; t <= r; ++t) s += k[t + r] * img[std::clamp(i + t, 0, h - 1) * w + j];
      tmp[i * w + j] = s;
    }
  for (int i = 0; i < h; ++i)
    for (int j = 0; j < w; ++j) {
      double s = 0;
      for (int t = -r; t <= r; ++t) s += k[t + r] * tmp[i * w + std::clamp(j + t, 0, w - 1)];
      img[i * w + j] = s;
    }
}

// ---- presets ----------------------------------------------------------------------------------------
const std::vector<std::string>& preset_names() {
  static const std::vector<std::string> names = {"model1", "varied"};
  return names;
}

SimConfig preset_config(const std::string& name) {
  SimConfig c;
  c.preset = name;
  if (name == "model1") return c;
  if (name == "varied") {
    // Ring radii 0.6-1.7" (theta_E ~ sqrt(M): 1.2815" at 1e12), rings wider than tall (e1 > 0 puts
    // the major axis along x), more shear for four-image crosses, the source nearer the caustics,
    // and ~9x the exposure so that the background fluctuates ~3x less relative to the ring.
    c.main_mass_min = 0.22e12;
    c.main_mass_max = 1.76e12;
    c.e1_min = 0.15, c.e1_max = 0.4, c.e2_min = -0.05, c.e2_max = 0.05;
    c.gamma1_min = 0.03, c.gamma1_max = 0.12, c.gamma2_min = -0.03, c.gamma2_max = 0.03;
    c.subhalos_scale_with_mass = true;
    c.source_e1_min = -0.2, c.source_e1_max = 0.2, c.source_e2_min = -0.2, c.source_e2_max = 0.2;
    c.source_offset = 0.25;
    c.log10_exposure_min = 3.95, c.log10_exposure_max = 4.45;
    return c;
  }
  throw std::invalid_argument("unknown simulator preset '" + name + "' (expected model1 or varied)");
}

std::vector<std::pair<std::string, std::string>> config_settings(const SimConfig& c) {
  std::vector<std::pair<std::string, std::string>> s;
  auto put = [&](const char* k, double v) {
    std::ostringstream os;
    os.precision(17);
    os << v;
    s.emplace_back(k, os.str());
  };
  s.emplace_back("preset", c.preset);
  put("size", c.size), put("pixel_scale", c.pixel_scale), put("supersampling", c.supersampling);
  put("z_lens", c.z_lens), put("z_source", c.z_source);
  put("main_mass_min", c.main_mass_min), put("main_mass_max", c.main_mass_max);
  put("e1_min", c.e1_min), put("e1_max", c.e1_max), put("e2_min", c.e2_min), put("e2_max", c.e2_max);
  put("gamma1_min", c.gamma1_min), put("gamma1_max", c.gamma1_max);
  put("gamma2_min", c.gamma2_min), put("gamma2_max", c.gamma2_max);
  s.emplace_back("subhalo_profile", c.subhalo_profile == SubhaloProfile::tnfw ? "tnfw" : "point_mass");
  put("mean_subhalos", c.mean_subhalos), put("subhalos_scale_with_mass", c.subhalos_scale_with_mass), put("sub_mass_min", c.sub_mass_min), put("sub_mass_max", c.sub_mass_max);
  put("mass_slope", c.mass_slope), put("sub_r_min", c.sub_r_min), put("sub_r_max", c.sub_r_max);
  put("tnfw_concentration", c.tnfw_concentration), put("tnfw_tau", c.tnfw_tau);
  put("label_mass_factor", c.label_mass_factor);
  put("source_amp", c.source_amp), put("source_r", c.source_r), put("source_n", c.source_n);
  put("source_e1_min", c.source_e1_min), put("source_e1_max", c.source_e1_max);
  put("source_e2_min", c.source_e2_min), put("source_e2_max", c.source_e2_max);
  put("source_offset", c.source_offset), put("psf_fwhm", c.psf_fwhm), put("psf_truncation", c.psf_truncation);
  put("log10_exposure_min", c.log10_exposure_min), put("log10_exposure_max", c.log10_exposure_max);
  put("background_rms", c.background_rms);
  return s;
}

const std::vector<std::string>& param_names() {
  static const std::vector<std::string> names = {"main_mass", "theta_e",   "e1",        "e2",       "gamma1",
                                                 "gamma2",    "source_x",  "source_y",  "source_e1", "source_e2",
                                                 "n_sub",     "sub_mass_sum", "exposure", "label"};
  return names;
}
std::vector<double> param_values(const LensParams& p) {
  return {p.main_mass, p.theta_e,   p.e1,        p.e2,   p.gamma1,       p.gamma2,   p.source_x,
          p.source_y,  p.source_e1, p.source_e2, p.n_sub, p.sub_mass_sum, p.exposure, p.label};
}

// ---- the simulator ------------------------------------------------------------------------------------
namespace {
const Cosmology kCosmo{70.0, 0.3};

void check(const SimConfig& c) {
  auto bad = [&](const std::string& what) { throw std::invalid_argument("simulator config: " + what); };
  if (c.size < 1 || c.size > 8192) bad("size must be in 1..8192");
  if (!(c.pixel_scale > 0)) bad("pixel_scale must be > 0");
  if (c.supersampling < 1 || c.supersampling > 16) bad("supersampling must be in 1..16");
  if (!(c.mean_subhalos >= 0)) bad("mean_subhalos must be >= 0");
  if (!(c.sub_mass_min > 0 && c.sub_mass_max >= c.sub_mass_min)) bad("need 0 < sub_mass_min <= sub_mass_max");
  if (!(c.main_mass_min > 0 && c.main_mass_max >= c.main_mass_min)) bad("need 0 < main_mass_min <= main_mass_max");
  if (!(c.z_source > c.z_lens && c.z_lens > 0)) bad("need 0 < z_lens < z_source");
}
}  // namespace

Simulator::Simulator(SimConfig config) : config_(std::move(config)) {
  check(config_);
  sigma_cr_arcsec2_ = sigma_crit_arcsec2(kCosmo, config_.z_lens, config_.z_source);
  theta_e_1e12_ = deeplense_theta_e(kCosmo, 1e12, config_.z_lens, config_.z_source);  // distances once
}

LensParams Simulator::draw_params(uint64_t seed, int64_t index) const {
  const SimConfig& c = config_;
  Rng rng(seed, static_cast<uint64_t>(index), 0);
  LensParams p;
  const double lm = std::log(c.main_mass_min), hm = std::log(c.main_mass_max);
  p.main_mass = std::exp(rng.uniform(lm, hm));
  p.theta_e = theta_e(p.main_mass);
  p.e1 = rng.uniform(c.e1_min, c.e1_max);
  p.e2 = rng.uniform(c.e2_min, c.e2_max);
  p.gamma1 = rng.uniform(c.gamma1_min, c.gamma1_max);
  p.gamma2 = rng.uniform(c.gamma2_min, c.gamma2_max);
  p.source_x = rng.uniform(-c.source_offset, c.source_offset);
  p.source_y = rng.uniform(-c.source_offset, c.source_offset);
  p.source_e1 = rng.uniform(c.source_e1_min, c.source_e1_max);
  p.source_e2 = rng.uniform(c.source_e2_min, c.source_e2_max);
  p.exposure = std::pow(10.0, rng.uniform(c.log10_exposure_min, c.log10_exposure_max));
  // With subhalos_scale_with_mass the mean count follows the host mass, so that f_sub keeps the
  // model1 distribution however heavy the lens is.
  const int64_t n = rng.poisson(c.mean_subhalos * (c.subhalos_scale_with_mass ? p.main_mass / 1e12 : 1.0));
  // pdf ~ m^s on [lo, hi]: inverse CDF m = (lo^(s+1) + u (hi^(s+1) - lo^(s+1)))^(1/(s+1)).
  const double s1 = c.mass_slope + 1;
  const double lo = std::pow(c.sub_mass_min, s1), hi = std::pow(c.sub_mass_max, s1);
  for (int64_t i = 0; i < n; ++i) {
    const double m = std::abs(s1) < 1e-12 ? std::exp(rng.uniform(std::log(c.sub_mass_min), std::log(c.sub_mass_max)))
                                          : std::pow(lo + rng.uniform() * (hi - lo), 1 / s1);
    const double r = rng.uniform(c.sub_r_min, c.sub_r_max), phi = rng.uniform(0, 2 * M_PI);
    p.sub_mass.push_back(m);
    p.sub_x.push_back(r * std::cos(phi));
    p.sub_y.push_back(r * std::sin(phi));
    double counted = m;
    if (c.subhalo_profile == SubhaloProfile::tnfw) {  // bound mass M200 T(tau) / mu(c)
      const double cc = c.tnfw_concentration, tau = c.tnfw_tau, t2 = tau * tau;
      const double T = t2 / ((t2 + 1) * (t2 + 1)) * ((t2 - 1) * std::log(tau) + M_PI * tau - (t2 + 1));
      counted = m * T / (std::log(1 + cc) - cc / (1 + cc));
    }
    p.sub_mass_sum += counted;
  }
  p.n_sub = static_cast<double>(n);
  p.label = p.sub_mass_sum / (c.label_mass_factor * p.main_mass);
  return p;
}

std::vector<double> Simulator::render(const LensParams& p) const {
  const SimConfig& c = config_;
  const int N = c.size, S = c.supersampling;
  const double d = c.pixel_scale;
  // Subhalo lensing parameters.
  std::vector<double> sub_te(p.sub_mass.size()), sub_rs(p.sub_mass.size()), sub_ars(p.sub_mass.size());
  if (c.subhalo_profile == SubhaloProfile::point_mass) {
    for (std::size_t k = 0; k < p.sub_mass.size(); ++k)
      sub_te[k] = theta_e(p.sub_mass[k]);
  } else {
    const double dl = kCosmo.angular_diameter_distance(0, c.z_lens);
    const double arcsec = M_PI / 180.0 / 3600.0;
    const double sigma_mpc2 = sigma_cr_arcsec2_ / (dl * arcsec * dl * arcsec);
    const double e = kCosmo.E(c.z_lens), h = kCosmo.H0 / 100;
    const double rho_crit = 2.77536627e11 * h * h * e * e;
    for (std::size_t k = 0; k < p.sub_mass.size(); ++k)
      nfw_physical_to_angle(p.sub_mass[k], c.tnfw_concentration, dl, sigma_mpc2, rho_crit, sub_rs[k], sub_ars[k]);
  }
  // The SIE and the source with their trigonometry done once per image (the same formulas as
  // sie_deflection and sersic in profiles.cpp, which the tests check against lenstronomy).
  double q, phi;
  ellipticity_to_q_phi(p.e1, p.e2, q, phi);
  const double cphi = std::cos(phi), sphi = std::sin(phi);
  const bool round = 1 - q < 1e-6;
  const double f = std::sqrt(std::max(1 - q * q, 0.0)), b_over_f = round ? 0 : p.theta_e * std::sqrt(q) / f;
  const double core = 1e-10 / std::sqrt(q);
  auto sie = [&](double x, double y) {
    const double xp = x * cphi + y * sphi, yp = -x * sphi + y * cphi;
    double ax, ay;
    if (round) {
      const double r = std::max(std::hypot(xp, yp), 1e-15);
      ax = p.theta_e * xp / r, ay = p.theta_e * yp / r;
    } else {
      const double psi = std::sqrt(q * q * (core * core + xp * xp) + yp * yp);
      ax = b_over_f * std::atan(f * xp / (psi + core));
      ay = b_over_f * std::atanh(f * yp / (psi + q * q * core));
    }
    return Vec2{ax * cphi - ay * sphi, ax * sphi + ay * cphi};
  };
  const double se1 = p.source_e1, se2 = p.source_e2, snorm = std::sqrt(1 - se1 * se1 - se2 * se2);
  const double bn = sersic_bn(c.source_n), inv_n = 1 / c.source_n, rsers = std::max(c.source_r, 1e-4);
  auto source = [&](double bx, double by) {
    const double dx = bx - p.source_x, dy = by - p.source_y;
    const double xt = ((1 - se1) * dx - se2 * dy) / snorm, yt = (-se2 * dx + (1 + se1) * dy) / snorm;
    const double R = std::max(std::sqrt(xt * xt + yt * yt), 1e-4) / rsers;
    if (R > 1000) return 0.0;
    const double t = inv_n == 1.0 ? R : std::pow(R, inv_n);
    return c.source_amp * std::exp(-bn * (t - 1));
  };
  std::vector<double> img(static_cast<std::size_t>(N) * N);
  for (int i = 0; i < N; ++i)
    for (int j = 0; j < N; ++j) {
      double sum = 0;
      for (int a = 0; a < S; ++a)
        for (int b = 0; b < S; ++b) {
          const double x = (j - (N - 1) / 2.0) * d + d * ((b + 0.5) / S - 0.5);
          const double y = (i - (N - 1) / 2.0) * d + d * ((a + 0.5) / S - 0.5);
          Vec2 al = sie(x, y);
          const Vec2 sh = shear_deflection(x, y, p.gamma1, p.gamma2);
          al.x += sh.x, al.y += sh.y;
          for (std::size_t k = 0; k < p.sub_mass.size(); ++k) {
            const Vec2 s = c.subhalo_profile == SubhaloProfile::point_mass
                               ? point_mass_deflection(x, y, sub_te[k], p.sub_x[k], p.sub_y[k])
                               : tnfw_deflection(x, y, sub_rs[k], sub_ars[k], c.tnfw_tau * sub_rs[k], p.sub_x[k],
                                                 p.sub_y[k]);
            al.x += s.x, al.y += s.y;
          }
          sum += source(x - al.x, y - al.y);
        }
      img[static_cast<std::size_t>(i) * N + j] = sum / (S * S) * d * d;  // flux per pixel
    }
  gaussian_filter(img, N, N, c.psf_fwhm / (2 * std::sqrt(2 * std::log(2.0))) / d, c.psf_truncation);
  return img;
}

SimImage Simulator::simulate(uint64_t seed, int64_t index) const {
  SimImage out;
  out.params = draw_params(seed, index);
  out.label = out.params.label;
  const std::vector<double> m = render(out.params);
  // DeepLenseSim Model I: counts = Poisson(clip(t (m + N(0, sqrt(m/t)) + N(0, bkg)), 0)).
  Rng rng(seed, static_cast<uint64_t>(index), 1);
  const double t = out.params.exposure, bkg = config_.background_rms;
  out.counts.resize(m.size());
  for (std::size_t i = 0; i < m.size(); ++i) {
    const double mi = std::max(m[i], 0.0);
    const double v = t * (m[i] + rng.normal() * std::sqrt(mi / t) + rng.normal() * bkg);
    out.counts[i] = rng.poisson(std::max(v, 0.0));
  }
  return out;
}

void Simulator::simulate_batch(uint64_t seed, int64_t first, int64_t count, int threads,
                               std::vector<SimImage>& out) const {
  out.assign(static_cast<std::size_t>(std::max<int64_t>(count, 0)), SimImage{});
  const int nt = threads > 0 ? threads : omp_get_max_threads();
#pragma omp parallel for schedule(dynamic, 1) num_threads(nt)
  for (int64_t i = 0; i < count; ++i) out[static_cast<std::size_t>(i)] = simulate(seed, first + i);
}

}  // namespace halo::data::lens
